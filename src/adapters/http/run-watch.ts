/**
 * Follows one run by polling: its record in the store and the new bytes of its log file. Polling
 * works whatever the store and wherever the worker (another process, another machine sharing
 * DATA_DIR), at the cost of up to one interval of delay.
 */
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { isFinal, type Run } from '../../core/runs/run.js';
import type { RunRecords } from '../../ports/run-store.js';

export interface RunWatch {
  store: RunRecords;
  runId: string;
  logPath: string;
  /** Log bytes already handed out. */
  logOffset: number;
  /** State already handed out. */
  state: Run['state'];
  pollMs: number;
  signal: AbortSignal;
  onLog(bytes: Buffer): void;
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
    // The record first, then the log: a worker writes its last lines before it records the end,
    // so reading the log after seeing a final state reads those lines too.
    const run = await watch.store.getRun(watch.runId);
    const read = await readFrom(watch.logPath, offset);
    if (watch.signal.aborted) return;
    if (read.length > 0) {
      offset += read.length;
      watch.onLog(read);
    }
    if (!run) return;
    if (run.state !== state) {
      state = run.state;
      watch.onState(run);
    }
    if (isFinal(run.state)) return;
  }
}

/** The file's bytes from `offset` to its current end; nothing when it does not exist yet. */
export async function readFrom(path: string, offset: number): Promise<Buffer> {
  let file;
  try {
    file = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw error;
  }
  try {
    const { size } = await file.stat();
    if (size <= offset) return Buffer.alloc(0);
    const buffer = Buffer.alloc(size - offset);
    let read = 0;
    while (read < buffer.length) {
      const { bytesRead } = await file.read(buffer, read, buffer.length - read, offset + read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return buffer.subarray(0, read);
  } finally {
    await file.close();
  }
}

/** Splits a byte stream into whole lines, keeping a partial last line for later. */
export class LineSplitter {
  private pending = '';
  private readonly decoder = new TextDecoder('utf-8');

  push(bytes: Buffer): string[] {
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
