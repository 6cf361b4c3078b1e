/**
 * The bodies of the JSON API and the JSON-RPC endpoint, defined once: requests are parsed with
 * these schemas, responses are built to them, and the OpenAPI document is generated from them.
 * Field names are snake_case, as in GitHub's own REST API; times are ISO 8601 strings in UTC.
 */
import { z } from 'zod';
import { requesterKinds, requiredRoles, runStates, triggers, type Run } from '../../core/runs/run.js';

/** Every schema that becomes a named component of the OpenAPI document. */
export const apiSchemaRegistry = z.registry<{ id: string; description?: string }>();

export const errorCodes = ['unauthorized', 'forbidden', 'not_found', 'invalid_request', 'refused', 'conflict', 'internal'] as const;
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

const isoDate = z.iso.datetime();

export const runStateSchema = z.enum(runStates).register(apiSchemaRegistry, {
  id: 'RunState',
  description: 'queued → running → succeeded | failed | cancelled | timed_out',
});

export const outputFileJsonSchema = z
  .object({
    name: z.string(),
    cid: z.string(),
    size: z.number().int().nonnegative(),
    kind: z.enum(['file', 'directory', 'symlink']),
  })
  .register(apiSchemaRegistry, { id: 'OutputFile' });

export const runJsonSchema = z
  .object({
    id: z.string(),
    /** `owner/name`. */
    repo: z.string(),
    installation_id: z.number().int(),
    /** Pull request or issue the run was asked for on; null for a run asked for through the API on a branch. */
    number: z.number().int().nullable(),
    is_pull_request: z.boolean(),
    /** The pinned commit: what runs, whatever is pushed later. */
    sha: z.string(),
    task: z.string(),
    task_type: z.string(),
    params: z.record(z.string(), z.string()),
    /** Ids of the runs (of the same request) that must succeed first. */
    needs: z.array(z.string()),
    /** Login of who asked: a GitHub user, `service:<digest>` for a service token, or the App's slug. */
    requested_by: z.string(),
    /** What `requested_by` is: a GitHub user, a service holding an API token, or the App itself. */
    requester_kind: z.enum(requesterKinds),
    /** The least role the request needed; checked again just before the task starts. */
    required_role: z.enum(requiredRoles),
    trigger: z.enum(triggers),
    /** Ids of the approving reviews the policy counted. */
    approvals: z.array(z.number().int()),
    manifest_digest: z.string(),
    state: runStateSchema,
    check_run_id: z.number().int().nullable(),
    exit_code: z.number().int().nullable(),
    /** Root CID of everything the task wrote to /out. */
    output_cid: z.string().nullable(),
    output_files: z.array(outputFileJsonSchema),
    metadata: z.record(z.string(), z.unknown()),
    error: z.string().nullable(),
    /** Where the whole log is served: `/api/runs/<id>/logs`. */
    log_url: z.string(),
    created_at: isoDate,
    queued_at: isoDate,
    started_at: isoDate.nullable(),
    finished_at: isoDate.nullable(),
    updated_at: isoDate,
  })
  .register(apiSchemaRegistry, { id: 'Run', description: 'A run record (DESIGN "Run record and states").' });
export type RunJson = z.infer<typeof runJsonSchema>;

export function runToJson(run: Run): RunJson {
  return {
    id: run.id,
    repo: `${run.repo.owner}/${run.repo.name}`,
    installation_id: run.repo.installationId,
    number: run.number,
    is_pull_request: run.isPullRequest,
    sha: run.sha,
    task: run.task,
    task_type: run.taskType,
    params: run.params,
    needs: run.needs,
    requested_by: run.requestedBy,
    requester_kind: run.requesterKind,
    required_role: run.requiredRole,
    trigger: run.trigger,
    approvals: run.approvals,
    manifest_digest: run.manifestDigest,
    state: run.state,
    check_run_id: run.checkRunId,
    exit_code: run.exitCode,
    output_cid: run.outputCid,
    output_files: run.outputFiles,
    metadata: run.metadata,
    error: run.error,
    log_url: `/api/runs/${encodeURIComponent(run.id)}/logs`,
    created_at: run.createdAt.toISOString(),
    queued_at: run.queuedAt.toISOString(),
    started_at: run.startedAt?.toISOString() ?? null,
    finished_at: run.finishedAt?.toISOString() ?? null,
    updated_at: run.updatedAt.toISOString(),
  };
}

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
