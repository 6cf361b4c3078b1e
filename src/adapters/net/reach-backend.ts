/**
 * Start-up checks of the servers a deployment names by URL (Redis, RabbitMQ, PostgreSQL, Kubo):
 * each is tried until it answers or CONNECT_TIMEOUT has passed, then start-up stops with one line
 * naming the server, its variable and its address (password hidden). Without them a wrong
 * QUEUE_URL made a worker wait for ever, its client retrying in silence.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface Backend {
  /** What people call it: `Redis`, `RabbitMQ`, `PostgreSQL`, `Kubo`. */
  name: string;
  /** The variable that named it, e.g. `QUEUE_URL`. */
  variable: string;
  url: string;
}

/** A backend did not answer in time: the message is the line the user sees. */
export class BackendUnreachableError extends Error {
  override readonly name = 'BackendUnreachableError';
}

/** The URL as it may be shown: any password replaced by `***`. */
export function hidePassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/(\/\/[^:/@]*:)[^@/]*@/, '$1***@');
  }
}

/**
 * How long a producer rides out a lost connection (a server restarting takes a moment) before it
 * says the queue is unavailable, rather than waiting for a server that may stay down.
 */
export const RECONNECT_GRACE_MS = 2000;

/** Resolves true when `emitter` emits `event` within `ms`, false otherwise. */
export function emitsWithin(emitter: NodeJS.EventEmitter, event: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (value: boolean) => {
      clearTimeout(timer);
      emitter.removeListener(event, onEvent);
      resolve(value);
    };
    const onEvent = () => done(true);
    const timer = setTimeout(() => done(false), Math.max(0, ms));
    emitter.once(event, onEvent);
  });
}

/** `within 10 s`, `within 1.5 s`. */
function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/** The reason of a failed attempt, on one line. */
function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return reasonOf(error.errors[0]);
  const message = error instanceof Error ? error.message || (error as NodeJS.ErrnoException).code || error.name : String(error);
  // fetch says only "fetch failed"; the refused connection is its cause.
  const cause = error instanceof Error && error.cause instanceof Error ? reasonOf(error.cause) : '';
  return (cause && !message.includes(cause) ? `${message} (${cause})` : message).replace(/\s*\n\s*/g, ' ');
}

/**
 * Calls `attempt` until it resolves, each call cut off at the deadline, pausing a little between
 * failures (a server that starts a few seconds after the app still counts). Throws a
 * BackendUnreachableError naming the backend and the last failure once `timeoutMs` has passed.
 */
export async function reachWithin(backend: Backend, timeoutMs: number, attempt: (signal: AbortSignal) => Promise<void>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = new Error('no answer');
  for (let failures = 0; Date.now() < deadline; failures += 1) {
    const signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
    try {
      await Promise.race([
        attempt(signal),
        new Promise<never>((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('no answer')), { once: true })),
      ]);
      return;
    } catch (error) {
      if (!(signal.aborted && failures > 0)) last = error;
    }
    const pause = Math.min(1000, 100 * 2 ** failures, deadline - Date.now());
    if (pause > 0) await sleep(pause);
  }
  throw new BackendUnreachableError(
    `cannot reach ${backend.name} at ${hidePassword(backend.url)} (${backend.variable}) within ${seconds(timeoutMs)}: ${reasonOf(last)}`,
  );
}
