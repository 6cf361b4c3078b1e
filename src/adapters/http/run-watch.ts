/**
 * Reads and follows one run's log from the run store (RunLogs), which holds it whichever worker
 * ran the task. Reads go in bounded pieces and wait for the reader between them, so serving a
 * log of any size holds at most a piece or two in memory. Following polls the store for the
 * run's record and new log bytes, at the cost of up to one interval of delay.
 */
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { isFinal, type Run } from '../../core/runs/run.js';
import type { RunLogs, RunRecords } from '../../ports/run-store.js';

/**
 * Bytes read at a time. An embedded (SQLite) store reads on the event loop, so a piece is also
 * how long one read holds up other requests: about 5 ms for 256 KiB, up to 50 ms on a busy machine.
 */
const PIECE_BYTES = 256 * 1024;

/** Takes log bytes; a returned promise is waited for before the next piece (the client's back-pressure). */
export type LogWriter = (bytes: Uint8Array) => void | Promise<void>;

/** The line a reader gets where the store cut bytes to stay under LOG_MAX_BYTES. */
export function logCutLine(bytes: number): string {
  return `task-mgmt: … ${bytes} bytes of log cut here (LOG_MAX_BYTES)\n`;
}

/**
 * Hands on a run's log from `offset`, up to `until` or the log's end when it is read, in pieces
 * of at most PIECE_BYTES, letting the event loop turn between them. Where the reader's offset was cut, a line says how many bytes
 * and the log goes on after the cut. Returns the offset reached: where to go on from.
 */
export async function copyLog(
  logs: RunLogs,
  runId: string,
  offset: number,
  write: LogWriter,
  options: { until?: number; signal?: AbortSignal } = {},
): Promise<number> {
  const { until, signal } = options;
  let at = offset;
  while (!signal?.aborted && (until === undefined || at < until)) {
    const read = await logs.readLog(runId, at, until === undefined ? PIECE_BYTES : Math.min(PIECE_BYTES, until - at));
    if (signal?.aborted) break;
    if (read.offset > at) await write(Buffer.from(logCutLine(read.offset - at)));
    at = read.offset;
    // The cut moved past `until` while this reader was behind: what lies beyond is for the next read.
    const bytes = until === undefined ? read.bytes : read.bytes.subarray(0, Math.max(0, until - at));
    if (bytes.byteLength === 0) break;
    await write(bytes);
    at += bytes.byteLength;
    // An embedded store answers without I/O and a client on a fast link may never push back:
    // without a turn of the event loop between pieces, a long log would hold up every other request.
    await nextTurn();
  }
  return at;
}

export interface RunWatch {
  store: RunRecords & RunLogs;
  runId: string;
  /** Log offset already handed out. */
  logOffset: number;
  /** State already handed out. */
  state: Run['state'];
  pollMs: number;
  signal: AbortSignal;
  onLog: LogWriter;
  /** Called when the state changed, after the log bytes written before the change. */
  onState(run: Run): void;
}

/** Resolves when the run is final (after its last state and log bytes) or the signal aborts. */
export async function watchRun(watch: RunWatch): Promise<void> {
  let offset = watch.logOffset;
  let state = watch.state;
  while (!watch.signal.aborted) {
    try {
      await sleep(watch.pollMs, undefined, { signal: watch.signal });
    } catch {
      return;
    }
    // The record first, then the log: a worker stores its last lines before it records the end,
    // so reading the log after seeing a final state reads those lines too.
    const run = await watch.store.getRun(watch.runId);
    offset = await copyLog(watch.store, watch.runId, offset, watch.onLog, { signal: watch.signal });
    if (watch.signal.aborted || !run) return;
    if (run.state !== state) {
      state = run.state;
      watch.onState(run);
    }
    if (isFinal(run.state)) return;
  }
}

/** Splits a byte stream into whole lines, keeping a partial last line for later. */
export class LineSplitter {
  private pending = '';
  private readonly decoder = new TextDecoder('utf-8');

  push(bytes: Uint8Array): string[] {
    this.pending += this.decoder.decode(bytes, { stream: true });
    const lines = this.pending.split('\n');
    this.pending = lines.pop() ?? '';
    return lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  }

  /** The partial last line, if any. */
  flush(): string[] {
    const rest = this.pending + this.decoder.decode();
    this.pending = '';
    return rest.length > 0 ? [rest] : [];
  }
}
