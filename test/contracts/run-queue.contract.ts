/**
 * What every RunQueue adapter must do. The embedded queue reads its backlog from the store while
 * BullMQ carries messages, so each test does what the app does: records the run as queued in the
 * store AND enqueues its id. The handler here behaves like the real worker: it takes the run with
 * the store's atomic queued → running move and finishes it, or hands it back on a retryable error.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RetryableError } from '../../src/ports/errors.js';
import type { RunState } from '../../src/core/runs/run.js';
import type { RunHandler, RunQueue } from '../../src/ports/run-queue.js';
import type { RunStore } from '../../src/ports/run-store.js';
import { newRun } from './run-store.contract.js';

export interface OpenedRunQueue {
  queue: RunQueue;
  store: RunStore;
  cleanup(): Promise<void>;
}

type Work = (runId: string, signal: AbortSignal, attempt: number) => Promise<void>;

interface WorkerStats {
  /** Every time the queue called the handler for a run. */
  calls: Map<string, number>;
  /** Every time the handler actually took the run (won queued → running). */
  attempts: Map<string, number>;
  /** When each attempt started, per run. */
  startedAt: Map<string, number[]>;
  inFlight: number;
  maxInFlight: number;
}

const workerId = 'contract-worker';
const increment = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);

/** A handler shaped like the real worker's (src/worker/run-worker.ts), with the work swapped out. */
function workerLike(store: RunStore, work: Work): { handler: RunHandler; stats: WorkerStats } {
  const stats: WorkerStats = { calls: new Map(), attempts: new Map(), startedAt: new Map(), inFlight: 0, maxInFlight: 0 };
  const handler: RunHandler = async ({ runId }, { signal }) => {
    increment(stats.calls, runId);
    stats.inFlight += 1;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    try {
      const found = await store.getRun(runId);
      if (!found || found.state !== 'queued') return;
      const run = await store.transition(runId, 'claim', new Date(), {
        workerId,
        leaseUntil: new Date(Date.now() + 30_000),
      });
      if (!run) return;
      increment(stats.attempts, runId);
      stats.startedAt.set(runId, [...(stats.startedAt.get(runId) ?? []), Date.now()]);
      try {
        await work(runId, signal, stats.attempts.get(runId) ?? 1);
      } catch (error) {
        if (error instanceof RetryableError && !signal.aborted) {
          await store.transition(runId, 'requeue', new Date(), { workerId: null, leaseUntil: null }, { heldBy: workerId });
          throw error;
        }
        await store.transition(runId, signal.aborted ? 'cancel' : 'fail', new Date(), { error: String(error) }, { heldBy: workerId });
        return;
      }
      await store.transition(runId, signal.aborted ? 'cancel' : 'succeed', new Date(), { exitCode: 0 }, { heldBy: workerId });
    } finally {
      stats.inFlight -= 1;
    }
  };
  return { handler, stats };
}

const pause =
  (ms: number): Work =>
  async () => {
    await sleep(ms);
  };

function untilAborted(signal: AbortSignal, limitMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not aborted within ${limitMs} ms`)), limitMs);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

export function runQueueContract(name: string, open: () => Promise<OpenedRunQueue>): void {
  describe(`RunQueue contract: ${name}`, () => {
    let opened: OpenedRunQueue;
    let queue: RunQueue;
    let store: RunStore;

    beforeEach(async () => {
      opened = await open();
      ({ queue, store } = opened);
    });

    afterEach(async () => {
      await opened.cleanup();
    });

    /** Records a run as queued and enqueues its id, as the app does. */
    async function submit(): Promise<string> {
      const run = await store.createRun(newRun(), new Date());
      await queue.enqueue({ runId: run.id });
      return run.id;
    }

    async function stateOf(runId: string): Promise<RunState | undefined> {
      return (await store.getRun(runId))?.state;
    }

    async function waitForState(runIds: string[], state: RunState, timeout = 10_000): Promise<void> {
      await vi.waitFor(
        async () => {
          for (const id of runIds) expect(await stateOf(id)).toBe(state);
        },
        { timeout, interval: 20 },
      );
    }

    it('tells how many runs wait, and that its connection is up while it consumes', async () => {
      // RabbitMQ counts a published message a moment after confirming it.
      const depth = async (expected: number) => vi.waitFor(async () => expect(await queue.depth!()).toBe(expected), { timeout: 5000, interval: 50 });
      await depth(0);
      const ids = [await submit(), await submit(), await submit()];
      await depth(3);
      const { handler } = workerLike(store, pause(10));
      await queue.consume(handler, { concurrency: 2 });
      await waitForState(ids, 'succeeded');
      await depth(0);
      await vi.waitFor(() => expect(queue.connected!()).toBe(true), { timeout: 5000, interval: 50 });
    });

    it('handles each enqueued run exactly once, at most `concurrency` at a time', async () => {
      const { handler, stats } = workerLike(store, pause(30));
      const ids: string[] = [];
      for (let i = 0; i < 20; i += 1) ids.push(await submit());
      await queue.consume(handler, { concurrency: 3 });

      await waitForState(ids, 'succeeded', 20_000);
      // Give a stray second delivery time to show up.
      await sleep(500);
      for (const id of ids) {
        expect(stats.attempts.get(id), `run ${id} taken`).toBe(1);
        expect(stats.calls.get(id), `handler called for ${id}`).toBe(1);
      }
      expect(stats.calls.size).toBe(20);
      expect(stats.maxInFlight).toBeGreaterThan(1);
      expect(stats.maxInFlight).toBeLessThanOrEqual(3);
    });

    it('handles a run enqueued twice once', async () => {
      const { handler, stats } = workerLike(store, pause(50));
      const runId = await submit();
      await queue.enqueue({ runId });
      await queue.consume(handler, { concurrency: 2 });
      // And once more while it may be running.
      await queue.enqueue({ runId });

      await waitForState([runId], 'succeeded');
      await queue.enqueue({ runId });
      await sleep(500);
      expect(stats.attempts.get(runId)).toBe(1);
    });

    it('aborts the signal of a running handler within 2 s of cancel', async () => {
      let abortedAt: number | null = null;
      const { handler, stats } = workerLike(store, async (_runId, signal) => {
        await untilAborted(signal, 15_000);
        abortedAt = Date.now();
      });
      const runId = await submit();
      await queue.consume(handler, { concurrency: 1 });
      await waitForState([runId], 'running');

      const cancelledAt = Date.now();
      await queue.cancel(runId);
      await vi.waitFor(() => expect(abortedAt).not.toBeNull(), { timeout: 2000, interval: 10 });
      expect(abortedAt! - cancelledAt).toBeLessThan(2000);
      await waitForState([runId], 'cancelled');
      await sleep(300);
      expect(stats.attempts.get(runId)).toBe(1);
    });

    it('leaves other runs alone when one is cancelled', async () => {
      const aborted = new Set<string>();
      const { handler } = workerLike(store, async (runId, signal) => {
        await Promise.race([untilAborted(signal, 15_000).then(() => aborted.add(runId)), sleep(400)]);
      });
      const keep = await submit();
      const stop = await submit();
      await queue.consume(handler, { concurrency: 2 });
      await waitForState([keep, stop], 'running');
      await queue.cancel(stop);
      await waitForState([stop], 'cancelled', 2000);
      await waitForState([keep], 'succeeded');
      expect([...aborted]).toStrictEqual([stop]);
    });

    it('ignores cancelling a run it does not hold', async () => {
      await expect(queue.cancel(randomUUID())).resolves.toBeUndefined();
    });

    it('gives a run back after its handler throws a RetryableError', async () => {
      const retryAfterMs = 300;
      const { handler, stats } = workerLike(store, async (_runId, _signal, attempt) => {
        if (attempt === 1) throw new RetryableError('GitHub answered 502', { retryAfterMs });
      });
      const runId = await submit();
      await queue.consume(handler, { concurrency: 1 });

      await waitForState([runId], 'succeeded', 10_000);
      expect(stats.attempts.get(runId)).toBe(2);
      const [first = 0, second = 0] = stats.startedAt.get(runId) ?? [];
      // Not before the error asked, and not much later either: retryAfterMs is a promise to honour.
      expect(second - first).toBeGreaterThanOrEqual(retryAfterMs - 50);
      expect(second - first).toBeLessThan(retryAfterMs + 1500);
      await sleep(300);
      expect(stats.attempts.get(runId)).toBe(2);
    });

    it('waits for running handlers on close', async () => {
      let finished = false;
      const { handler } = workerLike(store, async () => {
        await sleep(600);
        finished = true;
      });
      const runId = await submit();
      await queue.consume(handler, { concurrency: 1 });
      await waitForState([runId], 'running');

      await queue.close();
      expect(finished).toBe(true);
      expect(await stateOf(runId)).toBe('succeeded');
    });

    it('takes no new runs after close', async () => {
      const { handler, stats } = workerLike(store, pause(10));
      await queue.consume(handler, { concurrency: 1 });
      await queue.close();
      const run = await store.createRun(newRun(), new Date());
      // The queue is closed: enqueueing may fail or be ignored, but must not run anything.
      await queue.enqueue({ runId: run.id }).catch(() => undefined);
      await sleep(500);
      expect(stats.calls.size).toBe(0);
      expect(await stateOf(run.id)).toBe('queued');
    });

    it('handles runs enqueued before consuming started', async () => {
      const { handler, stats } = workerLike(store, pause(10));
      const ids = [await submit(), await submit(), await submit()];
      await sleep(200);
      expect(stats.calls.size).toBe(0);
      for (const id of ids) expect(await stateOf(id)).toBe('queued');

      await queue.consume(handler, { concurrency: 2 });
      await waitForState(ids, 'succeeded');
      for (const id of ids) expect(stats.attempts.get(id)).toBe(1);
    });

    it('refuses to consume twice', async () => {
      const { handler } = workerLike(store, pause(10));
      await queue.consume(handler, { concurrency: 1 });
      await expect(queue.consume(handler, { concurrency: 1 })).rejects.toThrow();
    });
  });
}
