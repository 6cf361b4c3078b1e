/**
 * Turns a comment into data: a command to carry out, a reply to give, or a reason to ignore it.
 * Parsing never acts; the caller decides (as Atlantis separates its comment parser from runners).
 *
 * Only the first line counts, so a command cannot hide in a long comment, and quoted lines (`>`)
 * or code blocks are never commands: quoting someone's `/run` must not run anything. What the
 * comment said comes back in a reply only through `quote`, so it cannot mention or link.
 */
import { durationSchema } from '../runs/units.js';
import { quote } from '../text/quote.js';

export type Command =
  | { kind: 'run'; task: string | null; params: Record<string, string> }
  | { kind: 'cancel'; runId: string | null }
  | { kind: 'retry' }
  /** Keep a run's outputs pinned until at least now + `durationMs`. */
  | { kind: 'pin'; runId: string; durationMs: number }
  | { kind: 'help' };

export type ParsedComment =
  | { type: 'command'; command: Command }
  | { type: 'reply'; message: string }
  | { type: 'ignore'; reason: string };

export const commandNames = ['run', 'cancel', 'retry', 'pin', 'help'] as const;

const taskNamePattern = /^[a-z0-9][a-z0-9_.-]{0,62}$/i;
const paramKeyPattern = /^[a-z_][a-z0-9_]{0,62}$/i;
const runIdPattern = /^[a-z0-9][a-z0-9-]{0,63}$/i;

export function parseComment(body: string): ParsedComment {
  const firstLine = (body.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '').trim();
  if (firstLine.startsWith('>')) return { type: 'ignore', reason: 'quoted line' };
  if (firstLine.startsWith('```') || firstLine.startsWith('~~~')) return { type: 'ignore', reason: 'code block' };
  if (!firstLine.startsWith('/')) return { type: 'ignore', reason: 'not a command' };

  const tokens = tokenize(firstLine.slice(1));
  if (!tokens.ok) return { type: 'reply', message: tokens.error };
  const [rawName = '', ...args] = tokens.value;
  const name = rawName.toLowerCase();

  switch (name) {
    case 'run':
      return parseRun(args);
    case 'cancel':
      if (args.length > 1) return usage('`/cancel` takes at most one run id: `/cancel [run-id]`');
      if (args[0] !== undefined && !runIdPattern.test(args[0])) return usage(`${quote(args[0])} is not a run id`);
      return { type: 'command', command: { kind: 'cancel', runId: args[0] ?? null } };
    case 'retry':
      if (args.length > 0) return usage('`/retry` takes no arguments');
      return { type: 'command', command: { kind: 'retry' } };
    case 'pin':
      return parsePin(args);
    case 'help':
      return { type: 'command', command: { kind: 'help' } };
    default: {
      const guess = closestCommand(name);
      // A path such as "/usr/bin is missing" is prose, not a typo: only near misses get a reply.
      if (!guess || !/^[a-z-]+$/.test(name)) return { type: 'ignore', reason: 'not a known command' };
      return { type: 'reply', message: `${quote(`/${name}`)} is not a command. Did you mean \`/${guess}\`? Try \`/help\`.` };
    }
  }
}

function parseRun(args: string[]): ParsedComment {
  let task: string | null = null;
  const params: Record<string, string> = {};
  for (const [index, arg] of args.entries()) {
    const eq = arg.indexOf('=');
    if (eq === -1) {
      if (index !== 0) return usage(`${quote(arg)} is not \`key=value\`; the task name comes first: \`/run [task] [key=value…]\``);
      if (!taskNamePattern.test(arg)) return usage(`${quote(arg)} is not a task name (letters, digits, \`-\`, \`_\`, \`.\`)`);
      task = arg;
      continue;
    }
    const key = arg.slice(0, eq);
    if (!paramKeyPattern.test(key)) return usage(`${quote(key)} is not a parameter name (letters, digits and \`_\`)`);
    const normalized = key.toLowerCase();
    if (normalized in params) return usage(`parameter ${quote(key)} is given twice`);
    params[normalized] = arg.slice(eq + 1);
  }
  return { type: 'command', command: { kind: 'run', task, params } };
}

function parsePin(args: string[]): ParsedComment {
  const [runId, duration] = args;
  if (runId === undefined || duration === undefined || args.length > 2) {
    return usage('`/pin` takes a run id and a duration: `/pin <run-id> <duration>`, e.g. `/pin 01hx5k2q 90d`');
  }
  if (!runIdPattern.test(runId)) return usage(`${quote(runId)} is not a run id`);
  const parsed = durationSchema.safeParse(duration);
  if (!parsed.success || !/^\d/.test(duration)) return usage(`${quote(duration)} is not a duration: use a number with a unit s, m, h or d (e.g. 90d)`);
  return { type: 'command', command: { kind: 'pin', runId, durationMs: parsed.data } };
}

function usage(message: string): ParsedComment {
  return { type: 'reply', message };
}

type Tokens = { ok: true; value: string[] } | { ok: false; error: string };

/** Splits on whitespace; double quotes group a value with spaces (`msg="hello world"`). */
function tokenize(line: string): Tokens {
  const tokens: string[] = [];
  let current = '';
  let inQuotes = false;
  let hasToken = false;
  for (let i = 0; i < line.length; i += 1) {
    const char = line[i]!;
    if (char === '\\' && inQuotes && (line[i + 1] === '"' || line[i + 1] === '\\')) {
      current += line[i + 1];
      i += 1;
    } else if (char === '"') {
      inQuotes = !inQuotes;
      hasToken = true;
    } else if (/\s/.test(char) && !inQuotes) {
      if (hasToken) tokens.push(current);
      current = '';
      hasToken = false;
    } else {
      current += char;
      hasToken = true;
    }
  }
  if (inQuotes) return { ok: false, error: 'a double quote is not closed' };
  if (hasToken) tokens.push(current);
  return { ok: true, value: tokens };
}

function closestCommand(name: string): string | null {
  let best: string | null = null;
  let bestDistance = 3;
  for (const candidate of commandNames) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best !== null && bestDistance <= Math.max(1, Math.floor(best.length / 2)) ? best : null;
}

/** Edit distance counting a swap of two neighbours as one edit (`/rnu` is one typo from `/run`). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}
