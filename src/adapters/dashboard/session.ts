/**
 * The dashboard's signed-in session and its sign-in attempt, each kept in a cookie the browser
 * holds: sealed with AES-256-GCM, so the browser can neither read nor change it. The session cookie
 * is HttpOnly and SameSite=Lax, and Secure (with the `__Host-` prefix) when PUBLIC_URL is https.
 * A session carries the GitHub login and a CSRF token that every form sends back.
 *
 * The key is SESSION_SECRET when set; otherwise it is derived (HKDF-SHA256) from the App's private
 * key and OAuth client secret, so it stays the same across restarts and replicas, and changing
 * either signs everyone out.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** How long a sign-in lasts. */
export const sessionLifetimeMs = 8 * 60 * 60 * 1000;
/** How long the way to GitHub and back may take. */
export const signInLifetimeMs = 10 * 60 * 1000;

export interface Session {
  login: string;
  /** Sent back by every form and button; compared with this. */
  csrf: string;
  /** Epoch milliseconds after which the session is no longer accepted. */
  expires: number;
}

/** What the browser holds while it is at GitHub: the OAuth state, the PKCE verifier, where to return. */
export interface SignInAttempt {
  state: string;
  verifier: string;
  returnTo: string;
  expires: number;
}

/** The session key: SESSION_SECRET, or one derived from the App's secrets. */
export function sessionKey(secrets: { sessionSecret?: string | undefined; privateKey?: string | undefined; clientSecret?: string | undefined }): Buffer {
  if (secrets.sessionSecret) return createHash('sha256').update(secrets.sessionSecret, 'utf8').digest();
  const material = `${secrets.privateKey ?? ''}\0${secrets.clientSecret ?? ''}`;
  if (material === '\0') throw new Error('the dashboard needs SESSION_SECRET, or the App’s private key and GITHUB_CLIENT_SECRET to derive its session key from');
  return Buffer.from(hkdfSync('sha256', material, 'task-mgmt', 'dashboard session cookie', 32));
}

export class CookieJar {
  readonly sessionName: string;
  readonly signInName: string;

  constructor(
    private readonly key: Buffer,
    /** Whether the dashboard is reached over https (PUBLIC_URL): cookies are Secure then. */
    private readonly secure: boolean,
    private readonly now: () => number = Date.now,
  ) {
    this.sessionName = secure ? '__Host-task-mgmt-session' : 'task-mgmt-session';
    this.signInName = secure ? '__Host-task-mgmt-sign-in' : 'task-mgmt-sign-in';
  }

  newSession(login: string): Session {
    return { login, csrf: randomBytes(24).toString('base64url'), expires: this.now() + sessionLifetimeMs };
  }

  session(req: IncomingMessage): Session | null {
    const value = readCookie(req, this.sessionName);
    const session = value === null ? null : (this.open(value, 'session') as Session | null);
    if (!session || typeof session.login !== 'string' || typeof session.csrf !== 'string' || typeof session.expires !== 'number') return null;
    return session.expires > this.now() ? session : null;
  }

  signIn(req: IncomingMessage): SignInAttempt | null {
    const value = readCookie(req, this.signInName);
    const attempt = value === null ? null : (this.open(value, 'sign-in') as SignInAttempt | null);
    if (!attempt || typeof attempt.state !== 'string' || typeof attempt.verifier !== 'string' || typeof attempt.returnTo !== 'string') return null;
    return attempt.expires > this.now() ? attempt : null;
  }

  sessionCookie(session: Session): string {
    return this.cookie(this.sessionName, this.seal(session, 'session'), sessionLifetimeMs);
  }

  signInCookie(attempt: SignInAttempt): string {
    return this.cookie(this.signInName, this.seal(attempt, 'sign-in'), signInLifetimeMs);
  }

  clear(name: string): string {
    return this.cookie(name, '', 0);
  }

  private cookie(name: string, value: string, maxAgeMs: number): string {
    return `${name}=${value}; Path=/; Max-Age=${Math.floor(maxAgeMs / 1000)}; HttpOnly; SameSite=Lax${this.secure ? '; Secure' : ''}`;
  }

  /** IV, tag and ciphertext, base64url; the purpose is authenticated too, so one cookie cannot pass for the other. */
  private seal(value: unknown, purpose: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(purpose));
    const sealed = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url');
  }

  private open(text: string, purpose: string): unknown {
    try {
      const bytes = Buffer.from(text, 'base64url');
      if (bytes.length < 29 || bytes.length > 4096) return null;
      const decipher = createDecipheriv('aes-256-gcm', this.key, bytes.subarray(0, 12));
      decipher.setAAD(Buffer.from(purpose));
      decipher.setAuthTag(bytes.subarray(12, 28));
      return JSON.parse(Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8'));
    } catch {
      return null;
    }
  }
}

/** Whether a form's CSRF token is the session's, compared in constant time. */
export function csrfMatches(session: Session, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(session.csrf).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}

/** The value of one cookie of the request, or null. */
export function readCookie(req: IncomingMessage, name: string): string | null {
  const header = req.headers.cookie;
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** PKCE (RFC 7636): a random verifier and its S256 challenge. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}
