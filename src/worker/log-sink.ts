/**
 * Where a run's log lines go: in chunks to the run store (RunLogs), where the app serves them
 * whichever worker ran the task, and the last lines kept in memory for the check run's
 * `output.text`.
 *
 * Lines are batched: a chunk is written once ~64 KiB are waiting or ~250 ms after the first line
 * of a batch. A task can print faster than the store takes it, so past `maxPendingBytes` waiting
 * `line()` returns a promise that settles once the store caught up; the executor stops reading
 * the container's output until then (back-pressure), and memory stays bounded.
 *
 * The store caps the log (LOG_MAX_BYTES, head and tail kept). When it fails, the run goes on:
 * a log is worth less than a task that may have run for days. A chunk is tried again a few
 * times (the producer waits meanwhile); then what is waiting is dropped, the next chunk that
 * gets through starts with a line saying how many bytes were lost there, and the tail (so the
 * check run) ends saying how many were lost in all. Nothing of it is silent, and the worker's
 * own log has the error.
 */
import { LogOffsetError, type RunLogs } from '../ports/run-store.js';

export interface LogSinkOptions {
  store: RunLogs;
  runId: string;
  /** LOG_MAX_BYTES: the store keeps the first and the last half of it. */
  maxBytes: number;
  /** Told about each store failure the sink gave up on (the worker logs it). */
  onStoreError?: (error: unknown) => void;
  /** A chunk is written once this many bytes wait (default 64 KiB). */
  flushBytes?: number;
  /** …or this long after the first line of a batch (default 250 ms). */
  flushMs?: number;
  /** Past this many bytes waiting, `line()` asks the producer to wait (default 1 MiB). */
  maxPendingBytes?: number;
  /** Waits before each new try of a chunk the store refused (default 0.25 s, 1 s, 4 s). */
  retryDelaysMs?: readonly number[];
}

/** Longest line kept; longer ones are cut, so one line cannot fill a chunk on its own. */
const MAX_LINE_CHARS = 4000;

export class LogSink {
  private readonly tail: string[] = [];
  private tailChars = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Where the next chunk goes in the store's log; unknown until asked (an earlier attempt of the run may have written). */
  private offset: number | undefined;
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private waiters: Array<() => void> = [];
  /** Bytes dropped since the store last took a chunk; said in the log once it takes one again. */
  private lostBytes = 0;
  /** Bytes lost over the whole run, for the check run. */
  private lostTotal = 0;
  private lastError = '';
  private readonly flushBytes: number;
  private readonly flushMs: number;
  private readonly maxPendingBytes: number;
  private readonly retryDelaysMs: readonly number[];

  constructor(
    private readonly options: LogSinkOptions,
    private readonly maxTailChars = 60_000,
    private readonly maxTailLines = 400,
  ) {
    this.flushBytes = options.flushBytes ?? 64 * 1024;
    this.flushMs = options.flushMs ?? 250;
    this.maxPendingBytes = Math.max(options.maxPendingBytes ?? 1024 * 1024, this.flushBytes);
    this.retryDelaysMs = options.retryDelaysMs ?? [250, 1000, 4000];
  }

  /**
   * Adds a line. Returns a promise when the store is behind: the producer should wait for it
   * before the next line (it never rejects).
   */
  line(text: string): Promise<void> | undefined {
    const line = text.length > MAX_LINE_CHARS ? `${text.slice(0, MAX_LINE_CHARS)}… (line cut)` : text;
    this.keepInTail(line);
    const bytes = Buffer.from(`${line}\n`, 'utf8');
    this.pending.push(bytes);
    this.pendingBytes += bytes.byteLength;
    if (this.pendingBytes >= this.flushBytes) this.startFlush();
    else this.timer ??= setTimeout(() => this.startFlush(true), this.flushMs);
    if (this.pendingBytes <= this.maxPendingBytes) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The last lines, and a last word when some of the log never reached the store. */
  tailText(): string {
    const text = this.tail.join('\n');
    if (this.lostTotal === 0) return text;
    return `${text}\ntask-mgmt: ${this.lostTotal} bytes of this log were lost: the run store did not take them (${this.lastError})`;
  }

  /** Resolves once every line given so far is in the store (or was given up on). Never rejects. */
  async flush(): Promise<void> {
    while (this.pendingBytes > 0 || this.flushing) {
      this.startFlush(true);
      await this.flushing;
    }
  }

  /** Flushes what is left; the sink takes no more lines after it. */
  async close(): Promise<void> {
    await this.flush();
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private keepInTail(line: string): void {
    this.tail.push(line);
    this.tailChars += line.length + 1;
    while (this.tail.length > this.maxTailLines || this.tailChars > this.maxTailChars) {
      this.tailChars -= this.tail.shift()!.length + 1;
    }
  }

  /** Starts writing chunks unless already writing; `all`: also a last, short one. */
  private startFlush(all = false): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.flushing) return;
    this.flushing = this.writeChunks(all).finally(() => {
      this.flushing = undefined;
      // Lines that came while the last chunk was written wait for their own batch.
      if (this.pendingBytes >= this.flushBytes) this.startFlush();
      else if (this.pendingBytes > 0) this.timer ??= setTimeout(() => this.startFlush(true), this.flushMs);
    });
  }

  private async writeChunks(all: boolean): Promise<void> {
    while (this.pendingBytes >= this.flushBytes || (all && this.pendingBytes > 0)) {
      const chunk = this.takeChunk();
      if (await this.store(chunk)) {
        this.lostBytes = 0;
      } else {
        // Given up: what waits is dropped too, and until the store answers again each chunk is
        // tried once, so the producer goes on instead of waiting out a round of tries per chunk.
        const lost = chunk.byteLength + this.pendingBytes;
        this.lostBytes += lost;
        this.lostTotal += lost;
        this.pending = [];
        this.pendingBytes = 0;
      }
      this.wakeProducers();
    }
  }

  /** Takes whole lines off the front, about `flushBytes` of them (a line is never split). */
  private takeChunk(): Buffer {
    const lines: Buffer[] = [];
    let size = 0;
    while (this.pending.length > 0 && (size === 0 || size + this.pending[0]!.byteLength <= this.flushBytes)) {
      const line = this.pending.shift()!;
      lines.push(line);
      size += line.byteLength;
    }
    this.pendingBytes -= size;
    return Buffer.concat(lines, size);
  }

  /** Writes one chunk, trying again as `retryDelaysMs` says; false when the store never took it. */
  private async store(chunk: Buffer): Promise<boolean> {
    const lost = this.lostBytes > 0 ? Buffer.from(`task-mgmt: … ${this.lostBytes} bytes of log lost here: the run store did not take them (${this.lastError})\n`) : undefined;
    const bytes = lost ? Buffer.concat([lost, chunk]) : chunk;
    const delays = lost ? [] : this.retryDelaysMs;
    for (let attempt = 0; ; attempt += 1) {
      try {
        this.offset ??= (await this.options.store.logInfo(this.options.runId)).size;
        // The same bytes at the same offset each try: an append that went through unanswered counts as done.
        const info = await this.options.store.appendLog(this.options.runId, { offset: this.offset, bytes }, this.options.maxBytes);
        this.offset = info.size;
        return true;
      } catch (error) {
        this.lastError = error instanceof LogOffsetError ? 'another writer appended to this log' : oneLine(error);
        if (error instanceof LogOffsetError) this.offset = error.size;
        const delay = delays[attempt];
        if (delay === undefined) {
          // Where the log ends is asked again before the next chunk.
          this.offset = undefined;
          if (!lost) this.options.onStoreError?.(error);
          return false;
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private wakeProducers(): void {
    if (this.pendingBytes > this.maxPendingBytes) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]!.slice(0, 200);
}
