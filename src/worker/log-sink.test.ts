/** The worker's LogSink against a real (in-memory SQLite) run store, and stores that are slow or fail. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteRunStore } from '../adapters/store/sqlite-run-store.js';
import type { LogInfo, RunLogs } from '../ports/run-store.js';
import { LogSink } from './log-sink.js';

const KiB = 1024;
const MiB = 1024 * KiB;

let store: SqliteRunStore;
beforeEach(async () => {
  store = await SqliteRunStore.open(':memory:');
});
afterEach(async () => {
  await store.close();
});

/** The whole log as a reader sees it, following the cut. */
async function storedText(runId: string): Promise<{ head: string; tail: string; info: LogInfo }> {
  const info = await store.logInfo(runId);
  const read = async (from: number, to: number) => {
    let text = '';
    for (let offset = from; offset < to; ) {
      const piece = await store.readLog(runId, offset);
      if (piece.bytes.byteLength === 0) break;
      text += Buffer.from(piece.bytes).toString('utf8');
      offset = piece.offset + piece.bytes.byteLength;
    }
    return text;
  };
  const cut = info.cut ?? { from: info.size, to: info.size };
  return { head: await read(0, cut.from), tail: await read(cut.to, info.size), info };
}

/** A RunLogs whose appends wait until `release()`: a store slower than the task. */
function slowStore(inner: RunLogs) {
  let open: (() => void) | undefined;
  let gate = new Promise<void>((resolve) => (open = resolve));
  let appends = 0;
  const logs: RunLogs = {
    logInfo: (runId) => inner.logInfo(runId),
    readLog: (runId, offset, limit) => inner.readLog(runId, offset, limit),
    async appendLog(runId, chunk, maxBytes) {
      appends += 1;
      await gate;
      return inner.appendLog(runId, chunk, maxBytes);
    },
  };
  return {
    logs,
    appends: () => appends,
    release() {
      open!();
      gate = Promise.resolve();
    },
  };
}

const line = (n: number) => `line ${String(n).padStart(7, '0')} ${'.'.repeat(80)}`;
const lineBytes = line(0).length + 1;

describe('LogSink', () => {
  it('stores every line in order, at the end of what an earlier attempt of the run wrote', async () => {
    await store.appendLog('run-1', { offset: 0, bytes: Buffer.from('from the first attempt\n') }, MiB);
    const sink = new LogSink({ store, runId: 'run-1', maxBytes: MiB, flushBytes: 256 });
    for (let n = 0; n < 50; n += 1) await sink.line(line(n));
    await sink.close();
    const { head, info } = await storedText('run-1');
    expect(info.cut).toBeNull();
    expect(head).toBe(`from the first attempt\n${Array.from({ length: 50 }, (_, n) => `${line(n)}\n`).join('')}`);
  });

  it('writes a short batch after flushMs, without waiting for a full chunk', async () => {
    const sink = new LogSink({ store, runId: 'run-2', maxBytes: MiB, flushMs: 20 });
    sink.line('only line');
    await expect.poll(async () => (await store.logInfo('run-2')).size, { timeout: 5000 }).toBe('only line\n'.length);
    await sink.close();
  });

  it('keeps the check run tail to its last lines, and cuts a very long line', async () => {
    const sink = new LogSink({ store, runId: 'run-3', maxBytes: MiB }, 10_000, 5);
    for (let n = 0; n < 20; n += 1) sink.line(`short ${n}`);
    sink.line('z'.repeat(5000));
    await sink.close();
    const tail = sink.tailText().split('\n');
    expect(tail.slice(0, 4)).toStrictEqual(['short 16', 'short 17', 'short 18', 'short 19']);
    expect(tail[4]).toBe(`${'z'.repeat(4000)}… (line cut)`);
    expect((await storedText('run-3')).head).toContain(`${'z'.repeat(4000)}… (line cut)\n`);
  });

  it('past LOG_MAX_BYTES the store holds its head and its tail, and says what was cut', async () => {
    const maxBytes = 1 * MiB;
    const sink = new LogSink({ store, runId: 'run-4', maxBytes });
    const lines = 200_000; // about 18 MiB
    for (let n = 0; n < lines; n += 1) await sink.line(line(n));
    await sink.close();
    const { head, tail, info } = await storedText('run-4');
    expect(info.size).toBe(lines * (line(0).length + 1));
    expect(info.cut).not.toBeNull();
    // Kept: about the cap (the head ends at a whole chunk of up to 64 KiB past half of it).
    const kept = Buffer.byteLength(head) + Buffer.byteLength(tail);
    expect(kept).toBeGreaterThan(maxBytes - 128 * KiB);
    expect(kept).toBeLessThanOrEqual(maxBytes + 64 * KiB);
    expect(head.startsWith(`${line(0)}\n${line(1)}\n`)).toBe(true);
    expect(tail.endsWith(`${line(lines - 2)}\n${line(lines - 1)}\n`)).toBe(true);
    // The cut falls between whole lines, at the offsets the store reports.
    expect(head.endsWith('\n') && /^line \d{7} /.test(tail)).toBe(true);
    expect(info.cut!.to - info.cut!.from).toBe(info.size - kept);
    expect(sink.tailText().endsWith(line(lines - 1))).toBe(true);
  });

  it('makes the producer wait while the store is behind, then lets it go on', async () => {
    const slow = slowStore(store);
    const sink = new LogSink({ store: slow.logs, runId: 'run-5', maxBytes: 64 * MiB, flushBytes: 4 * KiB, maxPendingBytes: 16 * KiB });
    let n = 0;
    let wait: Promise<void> | undefined;
    while (!wait && n < 10_000) wait = sink.line(line(n++));
    // It asked to wait once over 16 KiB waited besides the chunk being written: memory is bounded.
    expect(wait).toBeInstanceOf(Promise);
    expect(n * lineBytes).toBeGreaterThan(16 * KiB);
    expect(n * lineBytes).toBeLessThanOrEqual(16 * KiB + 4 * KiB + lineBytes);
    let released = false;
    const resumed = wait!.then(() => released);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(slow.appends()).toBe(1); // one chunk at a time
    released = true;
    slow.release();
    expect(await resumed).toBe(true); // it did not go on before the store caught up
    await sink.close();
    expect((await storedText('run-5')).head.split('\n').length - 1).toBe(n);
  });

  it('says in the tail and in the log when the store failed, and the run goes on', async () => {
    let failing = true;
    const errors: unknown[] = [];
    const flaky: RunLogs = {
      logInfo: (runId) => store.logInfo(runId),
      readLog: (runId, offset, limit) => store.readLog(runId, offset, limit),
      async appendLog(runId, chunk, maxBytes) {
        if (failing) throw new Error('connection terminated unexpectedly\n    at Socket.<anonymous>');
        return store.appendLog(runId, chunk, maxBytes);
      },
    };
    const sink = new LogSink({ store: flaky, runId: 'run-6', maxBytes: MiB, flushBytes: 1 * KiB, maxPendingBytes: 4 * KiB, retryDelaysMs: [1, 1], onStoreError: (error) => errors.push(error) });
    // 100 KiB while the store fails: the producer is never held for long, and nothing piles up.
    for (let n = 0; n < 1100; n += 1) await sink.line(line(n));
    await sink.flush();
    expect(errors).toHaveLength(1);
    const lostNote = (bytes: number) => `task-mgmt: ${bytes} bytes of this log were lost: the run store did not take them (connection terminated unexpectedly)`;
    expect(sink.tailText().endsWith(`${line(1099)}\n${lostNote(1100 * lineBytes)}`)).toBe(true);
    failing = false;
    sink.line('after the outage');
    await sink.close();
    const { head } = await storedText('run-6');
    expect(head).toBe(`task-mgmt: … ${1100 * lineBytes} bytes of log lost here: the run store did not take them (connection terminated unexpectedly)\nafter the outage\n`);
    expect(sink.tailText().endsWith(`after the outage\n${lostNote(1100 * lineBytes)}`)).toBe(true);
  });
});
