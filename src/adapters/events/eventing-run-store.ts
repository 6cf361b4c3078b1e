/**
 * A RunStore that tells an EventBus about every state change it records: `run.queued` when a
 * run is created or queued again, `run.started` when a worker takes it, and `run.<final state>`.
 * Events leave in the order the store recorded them, after the store has recorded them, and never
 * hold up the store: a broker that is down delays events, not runs.
 */
import type { Logger } from 'pino';
import type { Run, RunMove, RunState } from '../../core/runs/run.js';
import type { EventBus, RunEventName } from '../../ports/event-bus.js';
import type { MoveGuard, MovePatch, NewRun, RunClaim, RunStore } from '../../ports/run-store.js';
import { runToJson } from '../../core/runs/run-json.js';

const eventOf: Record<RunState, RunEventName> = {
  queued: 'run.queued',
  running: 'run.started',
  succeeded: 'run.succeeded',
  failed: 'run.failed',
  cancelled: 'run.cancelled',
  timed_out: 'run.timed_out',
};

export function withEvents(store: RunStore, bus: EventBus, log: Logger): RunStore & { flush(): Promise<void> } {
  let chain: Promise<void> = Promise.resolve();
  const emit = (run: Run) => {
    chain = chain.then(() =>
      bus.publish(eventOf[run.state], runToJson(run)).catch((error: unknown) => log.error({ err: error, runId: run.id, state: run.state }, 'could not publish a run event')),
    );
  };
  return Object.assign(Object.create(store) as RunStore, {
    async createRun(run: NewRun, now: Date) {
      const created = await store.createRun(run, now);
      emit(created);
      return created;
    },
    async transition(id: string, move: RunMove, now: Date, patch?: MovePatch, guard?: MoveGuard) {
      const moved = await store.transition(id, move, now, patch, guard);
      if (moved) emit(moved);
      return moved;
    },
    async claimRun(id: string, claim: RunClaim, now: Date) {
      const claimed = await store.claimRun(id, claim, now);
      if (claimed && claimed !== 'busy') emit(claimed);
      return claimed;
    },
    async flush() {
      await chain;
    },
    async close() {
      await chain;
      await bus.close();
      await store.close();
    },
  });
}
