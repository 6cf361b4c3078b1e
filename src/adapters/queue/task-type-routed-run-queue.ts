/**
 * Runs of the task types that external workers serve (EXTERNAL_TASK_TYPES) travel on a queue of
 * their own, one per type, so that the app's workers never take one they cannot run and an
 * external worker gets only the runs of its type (README "Task types served by other workers").
 * Every other run goes to the main queue, the only one this process consumes.
 */
import type { RunMessage } from '../../core/runs/run.js';
import type { RunHandler, RunQueue } from '../../ports/run-queue.js';

export interface TaskTypeRoutedRunQueueOptions {
  /** The app's own queue: runs of every other type, and the one `consume` takes from. */
  main: RunQueue;
  /** A queue per external task type, by type name. */
  external: ReadonlyMap<string, RunQueue>;
  /** The task type of a recorded run (the message carries only its id). */
  taskTypeOf: (runId: string) => Promise<string | undefined>;
}

export class TaskTypeRoutedRunQueue implements RunQueue {
  constructor(private readonly options: TaskTypeRoutedRunQueueOptions) {}

  async enqueue(message: RunMessage): Promise<void> {
    const type = await this.options.taskTypeOf(message.runId);
    const queue = (type !== undefined ? this.options.external.get(type) : undefined) ?? this.options.main;
    await queue.enqueue(message);
  }

  consume(handler: RunHandler, options: { concurrency: number }): Promise<void> {
    return this.options.main.consume(handler, options);
  }

  async cancel(runId: string): Promise<void> {
    // An external worker does not listen for cancellations; the run store's state is what it checks.
    await this.options.main.cancel(runId);
  }

  async close(): Promise<void> {
    await Promise.all([this.options.main, ...this.options.external.values()].map((queue) => queue.close()));
  }

  async depth(): Promise<number> {
    const depths = await Promise.all([this.options.main, ...this.options.external.values()].map((queue) => queue.depth?.() ?? Promise.resolve(0)));
    return depths.reduce((sum, n) => sum + n, 0);
  }

  connected(): boolean {
    return this.options.main.connected?.() ?? true;
  }
}
