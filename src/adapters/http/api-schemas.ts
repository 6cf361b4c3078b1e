/**
 * The bodies of the JSON API and the JSON-RPC endpoint, defined once: requests are parsed with
 * these schemas, responses are built to them, and the OpenAPI document is generated from them.
 * Field names are snake_case, as in GitHub's own REST API; times are ISO 8601 strings in UTC.
 */
import { z } from 'zod';
import {
  outputFileJsonSchema as coreOutputFileJsonSchema,
  runJsonSchema as coreRunJsonSchema,
  runStateSchema as coreRunStateSchema,
} from '../../core/runs/run-json.js';
import { durationSchema } from '../../core/runs/units.js';

/** Every schema that becomes a named component of the OpenAPI document. */
export const apiSchemaRegistry = z.registry<{ id: string; description?: string }>();

export const errorCodes = ['unauthorized', 'forbidden', 'not_found', 'invalid_request', 'refused', 'conflict', 'internal', 'unavailable'] as const;
export type ErrorCode = (typeof errorCodes)[number];

export const errorBodySchema = z
  .object({
    error: z.object({
      /** Stable: clients branch on it. */
      code: z.enum(errorCodes),
      /** For people: says what is wrong and, when it can, what to do. */
      message: z.string(),
      /** The request field at fault (`params.lang`, `limit`), when one is. */
      field: z.string().optional(),
    }),
  })
  .register(apiSchemaRegistry, { id: 'Error', description: 'Every error answer of the JSON API.' });
export type ErrorBody = z.infer<typeof errorBodySchema>;

// The run's JSON is shared with the events, so it is defined in core; the API names its parts.
export const runStateSchema = coreRunStateSchema.register(apiSchemaRegistry, {
  id: 'RunState',
  description: 'queued → running → succeeded | failed | cancelled | timed_out',
});
export const outputFileJsonSchema = coreOutputFileJsonSchema.register(apiSchemaRegistry, { id: 'OutputFile' });
export const runJsonSchema = coreRunJsonSchema.register(apiSchemaRegistry, { id: 'Run', description: 'A run record: one task run at one pinned commit.' });
export { runToJson, type RunJson } from '../../core/runs/run-json.js';

const repoName = z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'must be `owner/name`');

/** The most runs one page holds. */
export const maxPageSize = 100;

/** Query of `GET /api/runs`, and the params of the RPC method `runs.list`. */
export const listRunsQuerySchema = z
  .object({
    state: runStateSchema.optional(),
    repo: repoName.optional(),
    limit: z.coerce.number().int().min(1).max(maxPageSize).default(20),
    /** `next_cursor` of the previous page. */
    cursor: z.string().min(1).optional(),
  })
  .strict();
export type ListRunsParams = z.infer<typeof listRunsQuerySchema>;

export const runListSchema = z
  .object({
    runs: z.array(runJsonSchema),
    /** Pass as `cursor` for the next (older) page; null on the last page. */
    next_cursor: z.string().nullable(),
  })
  .register(apiSchemaRegistry, { id: 'RunList', description: 'A page of runs, newest first.' });
export type RunListJson = z.infer<typeof runListSchema>;

/** `POST /api/runs` and the RPC method `runs.create`. */
export const createRunRequestSchema = z
  .object({
    /** `owner/name` of a repository the App is installed on. */
    repo: repoName,
    /**
     * What to run: a pull request as `pull/<number>` (its current head), or a branch; unset means
     * the default branch's HEAD.
     */
    ref: z
      .string()
      .min(1)
      .max(255)
      .regex(/^(pull\/[1-9][0-9]*|[^\s~^:?*[\\]+)$/, 'must be a branch name or `pull/<number>`')
      .optional(),
    /** One task (with the tasks it needs); unset runs every task. */
    task: z.string().min(1).max(100).optional(),
    /** Task parameters, as `/run task key=value` would give them. */
    params: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'parameter names are letters, digits and _'), z.string()).optional(),
  })
  .strict()
  .register(apiSchemaRegistry, { id: 'CreateRunRequest' });
export type CreateRunRequest = z.infer<typeof createRunRequestSchema>;

export const createRunResponseSchema = z
  .object({
    /** queued: the runs are recorded and queued; waiting: an approving review is needed first, nothing was queued. */
    status: z.enum(['queued', 'waiting']),
    runs: z.array(runJsonSchema),
    /** Why it waits (status waiting). */
    reason: z.string().optional(),
    /** The commit an approval must be given on (status waiting). */
    sha: z.string().optional(),
  })
  .register(apiSchemaRegistry, { id: 'CreateRunResponse' });
export type CreateRunResponseJson = z.infer<typeof createRunResponseSchema>;

/** Params of the RPC methods `runs.get` and `runs.cancel`. */
export const runIdParamsSchema = z.object({ id: z.string().min(1) }).strict();

export const cancelRunResponseSchema = z
  .object({ run: runJsonSchema })
  .register(apiSchemaRegistry, { id: 'CancelRunResponse', description: 'The run as it is after the cancellation.' });
export type CancelRunResponseJson = z.infer<typeof cancelRunResponseSchema>;

export const pinRunRequestSchema = z
  .object({
    /** How long from now: a number and a unit ms, s, m, h or d (`90d`, `36h`), at most PIN_TTL_MAX. */
    duration: z.string().max(32),
  })
  .strict()
  .register(apiSchemaRegistry, {
    id: 'PinRunRequest',
    description: 'Keep the run’s outputs pinned until at least now + `duration` (`90d`, `36h`, …); a pin is never shortened.',
  });

/** The pin request as it is read: `duration` in milliseconds (the document shows the text sent). */
export const pinRunRequestReader = z.object({ duration: z.string().max(32).pipe(durationSchema) }).strict();

/** Params of the RPC method `runs.pin`: the run's id, and the pin request's `duration` (read as the API reads it). */
export const pinRunParamsSchema = z.object({ id: z.string().min(1), duration: z.unknown() }).strict();

export const pinRunResponseSchema = z
  .object({
    run: runJsonSchema,
    /** Until when the outputs now stay pinned: the later of their expiry and the one asked for. */
    pinned_until: z.iso.datetime(),
    /** False when they already stayed longer than asked: nothing changed. */
    extended: z.boolean(),
  })
  .register(apiSchemaRegistry, { id: 'PinRunResponse', description: 'The run with its outputs’ new pin expiry.' });
export type PinRunResponseJson = z.infer<typeof pinRunResponseSchema>;

/** The `field` of an error: a zod issue path as `params.lang` or `items[2]`. */
export function issuePath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, key) => (typeof key === 'number' ? `${text}[${key}]` : text ? `${text}.${String(key)}` : String(key)), '');
}

/** One sentence naming the first problem of a failed parse and its field. */
export function describeIssues(error: z.ZodError): { message: string; field?: string } {
  const issue = error.issues[0];
  if (!issue) return { message: 'the request is invalid' };
  const field = issuePath(issue.path);
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem${error.issues.length > 2 ? 's' : ''})` : '';
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((key) => (field ? `${field}.${key}` : key));
    return { message: `unknown field \`${keys.join('`, `')}\`${more}`, field: keys[0] ?? field };
  }
  return field ? { message: `\`${field}\`: ${issue.message}${more}`, field } : { message: `${issue.message}${more}` };
}
