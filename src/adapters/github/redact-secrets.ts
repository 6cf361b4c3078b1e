/**
 * Text shown on GitHub (check runs, replies) is public to whoever can read the repository, and
 * part of it comes from build and task logs a pull request controls: a step that prints the
 * environment, a key found on disk, a token echoed by a tool. Every GitHub-bound text passes
 * through one redactor, which removes GitHub token shapes, private-key blocks and the
 * deployment's own secrets, wherever in the text they are.
 */

export interface DeploymentSecrets {
  /** API_TOKENS. */
  apiTokens?: readonly string[];
  /** WEBHOOK_SECRET. */
  webhookSecret?: string | undefined;
  /** GITHUB_CLIENT_SECRET, the OAuth client secret of the dashboard. */
  clientSecret?: string | undefined;
  /** SESSION_SECRET, the dashboard's session key material. */
  sessionSecret?: string | undefined;
  /** The App's private key; its lines are redacted even outside a complete PEM block. */
  privateKey?: string | undefined;
}

export type Redact = (text: string) => string;

export const REDACTED = '[redacted]';

/**
 * GitHub's token prefixes (https://github.blog/2021-04-05-behind-githubs-new-authentication-token-formats/):
 * ghp_ personal, gho_ OAuth, ghu_ user-to-server, ghs_ server-to-server (installation), ghr_
 * refresh; github_pat_ fine-grained personal tokens.
 */
const githubToken = /\b(?:gh[pousr]_|github_pat_)[A-Za-z0-9_]+/g;
/** Either end of a PEM private-key block (PKCS#1 `RSA PRIVATE KEY`, PKCS#8 `PRIVATE KEY`, `EC …`). */
const pemMarker = /-----(BEGIN|END) [A-Z0-9 ]{0,40}PRIVATE KEY-----/g;
const keyCharacter = /[A-Za-z0-9+/=\r\n]/;

/** Secrets shorter than this are not looked for: they would redact ordinary words. */
const MIN_SECRET_LENGTH = 8;

export function secretRedactor(secrets: DeploymentSecrets = {}): Redact {
  const literals = [...(secrets.apiTokens ?? []), secrets.webhookSecret, secrets.clientSecret, secrets.sessionSecret, ...keyLines(secrets.privateKey)]
    .filter((secret): secret is string => typeof secret === 'string' && secret.length >= MIN_SECRET_LENGTH)
    // Longest first, so a secret that contains another is replaced whole.
    .sort((a, b) => b.length - a.length);
  return (text) => {
    let out = redactKeyBlocks(text);
    for (const secret of literals) out = out.split(secret).join(REDACTED);
    return out.replace(githubToken, REDACTED);
  };
}

/** The base64 lines of a PEM key, each long enough to be worth looking for on its own. */
function keyLines(pem: string | undefined): string[] {
  if (!pem) return [];
  return pem
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length >= 32 && !line.startsWith('-----'));
}

/**
 * Replaces each private-key block; in one pass, so a text full of markers costs no more than
 * its length. A block cut off at the end (a log keeps its head) is redacted to the end of the
 * text; one whose start was cut off (a log keeps its tail) from where its key lines start.
 */
function redactKeyBlocks(text: string): string {
  if (!text.includes('PRIVATE KEY-----')) return text;
  const spans: Array<[number, number]> = [];
  let openedAt: number | undefined;
  let doneUntil = 0;
  for (const marker of text.matchAll(pemMarker)) {
    const start = marker.index;
    const end = start + marker[0].length;
    if (marker[1] === 'BEGIN') {
      openedAt ??= start;
      continue;
    }
    let from = openedAt;
    if (from === undefined) {
      from = start;
      while (from > doneUntil && keyCharacter.test(text[from - 1]!)) from--;
    }
    spans.push([from, end]);
    doneUntil = end;
    openedAt = undefined;
  }
  if (openedAt !== undefined) spans.push([openedAt, text.length]);
  let out = '';
  let at = 0;
  for (const [from, to] of spans) {
    out += `${text.slice(at, from)}${REDACTED}`;
    at = to;
  }
  return out + text.slice(at);
}
