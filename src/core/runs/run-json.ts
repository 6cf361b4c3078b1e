/**
 * A run as other programs read it: the JSON API's answers, the run events on AMQP and the
 * worker's progress events all carry this one shape. Field names are snake_case, as in GitHub's
 * own REST API; times are ISO 8601 strings in UTC. The API registers these schemas for its
 * OpenAPI document (src/adapters/http/api-schemas.ts); the event schema extends `runJsonSchema`.
 */
import { z } from 'zod';
import { requesterKinds, requiredRoles, runStates, triggers, type Run } from './run.js';

const isoDate = z.iso.datetime();

/** queued → running → succeeded | failed | cancelled | timed_out (see `runMoves`). */
export const runStateSchema = z.enum(runStates);

export const outputFileJsonSchema = z.object({
  name: z.string(),
  cid: z.string(),
  size: z.number().int().nonnegative(),
  kind: z.enum(['file', 'directory', 'symlink']),
});

export const runJsonSchema = z.object({
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
  /** Until when the outputs stay pinned (and served by the app's gateway); null before they are added. `/pin` extends it. */
  pinned_until: isoDate.nullable(),
  /**
   * CID of the run's provenance record (DAG-JSON): what ran, for whom, on what, and the CIDs it
   * made; served by the gateway while pinned, checked with `task-mgmt verify`. Null until a run that started ends.
   */
  provenance_cid: z.string().nullable(),
  /** The latest progress the task reported while it ran: `done` of `total`, with a message; null before any. */
  progress: z.object({ done: z.number(), total: z.number().optional(), message: z.string().optional() }).nullable(),
  metadata: z.record(z.string(), z.unknown()),
  error: z.string().nullable(),
  /** Where the whole log is served: `/api/runs/<id>/logs`. */
  log_url: z.string(),
  created_at: isoDate,
  queued_at: isoDate,
  started_at: isoDate.nullable(),
  finished_at: isoDate.nullable(),
  updated_at: isoDate,
});
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
    approvals: run.approvals.map((approval) => approval.reviewId),
    manifest_digest: run.manifestDigest,
    state: run.state,
    check_run_id: run.checkRunId,
    exit_code: run.exitCode,
    output_cid: run.outputCid,
    output_files: run.outputFiles,
    pinned_until: run.pinnedUntil?.toISOString() ?? null,
    provenance_cid: run.provenanceCid,
    progress: run.progress ?? null,
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
