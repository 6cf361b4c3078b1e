/**
 * The JSON Schemas of what other programs read off the brokers, generated from the zod schemas
 * the code itself uses: a queue message (`task-mgmt.runs`) and an event (`task-mgmt.events`).
 */
import { z } from 'zod';
import { runMessageSchema } from '../../core/runs/run.js';
import { runJsonSchema } from '../../core/runs/run-json.js';

export const runEventSchema = z.object({
  /** The routing key: run.queued, run.started, run.progress, run.succeeded, run.failed, run.cancelled, run.timed_out. */
  event: z.enum(['run.queued', 'run.started', 'run.progress', 'run.succeeded', 'run.failed', 'run.cancelled', 'run.timed_out']),
  /** When it was published (ISO 8601). */
  at: z.string(),
  /** The run record as `GET /api/runs/:id` returns it, with `progress` as the task last reported it (null before any). */
  run: runJsonSchema,
});

export function messageJsonSchema(): unknown {
  return { ...z.toJSONSchema(runMessageSchema, { unrepresentable: 'any' }), title: 'task-mgmt.runs message' };
}

export function eventJsonSchema(): unknown {
  return { ...z.toJSONSchema(runEventSchema, { unrepresentable: 'any', io: 'output' }), title: 'task-mgmt.events message' };
}
