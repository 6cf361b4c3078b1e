/** The run record: one task run at one pinned commit. */
import { z } from 'zod';

export const runStates = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out'] as const;
export type RunState = (typeof runStates)[number];
export const finalStates: ReadonlySet<RunState> = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);

/** How the run was asked for. */
export const triggers = ['comment', 'rerun', 'api', 'schedule'] as const;
export type Trigger = (typeof triggers)[number];

/**
 * Who asks: a GitHub user (by comment, button or user token), a service holding one of the
 * deployment's API tokens, or the App acting on its own (scheduled runs).
 */
export const requesterKinds = ['user', 'service', 'app'] as const;
export type RequesterKind = (typeof requesterKinds)[number];
export interface Requester {
  kind: RequesterKind;
  /** A GitHub login; `service:<digest>` for a service token; the App's slug for the App. */
  login: string;
}

/** Least roles a manifest may ask for to run its tasks. */
export const requiredRoles = ['write', 'maintain', 'admin'] as const;
export type RequiredRole = (typeof requiredRoles)[number];

export const repoRefSchema = z.object({
  owner: z.string().min(1),
  name: z.string().min(1),
  /** GitHub App installation that can act on the repository. */
  installationId: z.number().int().positive(),
});
export type RepoRef = z.infer<typeof repoRefSchema>;

/** An approving review the policy counted: by whom, of which commit (always the run's SHA). */
export interface Approval {
  reviewId: number;
  /** The reviewer's login; null for runs recorded before reviewers were kept. */
  reviewer: string | null;
  commit: string;
}

export const outputFileSchema = z.object({
  name: z.string(),
  cid: z.string(),
  size: z.number().int().nonnegative(),
  kind: z.enum(['file', 'directory', 'symlink']),
});
export type OutputFile = z.infer<typeof outputFileSchema>;

export interface Run {
  id: string;
  repo: RepoRef;
  /** Pull request or issue number the command was given on. */
  number: number | null;
  isPullRequest: boolean;
  sha: string;
  task: string;
  taskType: string;
  /** Task definition as the worker needs it (for a Dockerfile task: its path). */
  dockerfile: string;
  /** The task as the manifest resolved it: type parameters, limits, network. */
  spec: RunSpec;
  /** Runs (of the same request) that must succeed first. */
  needs: string[];
  params: Record<string, string>;
  /** Login of who asked (see `requesterKind`). */
  requestedBy: string;
  requesterKind: RequesterKind;
  /** The least role the request needed; the worker checks it again just before the task starts. */
  requiredRole: RequiredRole;
  trigger: Trigger;
  /** The approving reviews the policy counted (empty when no review was needed). */
  approvals: Approval[];
  /** Digest of the files that define the task at `sha` (their git blob ids). */
  manifestDigest: string;
  state: RunState;
  checkRunId: number | null;
  commentId: number | null;
  exitCode: number | null;
  outputCid: string | null;
  outputFiles: OutputFile[];
  /** Until when the run's outputs stay pinned: the latest of its pins (kept after they are collected); null before they are added. */
  pinnedUntil: Date | null;
  /** CID of the run's provenance record (DAG-JSON, see provenance.ts), written when a run that started ends; null until then. */
  provenanceCid: string | null;
  /** Facts the task recorded about its outputs (a ZIM's title, counts…). */
  metadata: Record<string, unknown>;
  /** The latest progress a running task reported (kept at most once per progress interval); absent before any. */
  progress?: RunProgress | null;
  error: string | null;
  /** Last lines of the log, as shown in the check run. */
  logTail: string | null;
  /** Worker currently holding the run and until when its lease lasts. */
  workerId: string | null;
  leaseUntil: Date | null;
  createdAt: Date;
  queuedAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  updatedAt: Date;
}

/** What the worker needs to run a task, as recorded with the run. */
export const runSpecSchema = z.object({
  /** Parameters of the task type (`with:`, or the container's dockerfile and context). */
  with: z.record(z.string(), z.unknown()).default({}),
  timeoutMs: z.number().int().positive().optional(),
  cpus: z.number().positive().optional(),
  memoryBytes: z.number().int().positive().optional(),
  pids: z.number().int().positive().optional(),
  network: z.boolean().default(false),
  pinTtlMs: z.number().int().positive().optional(),
  /** The org policy's caps on what the task leaves to the deployment's defaults, and on its outputs. */
  caps: z
    .object({
      cpus: z.number().positive().optional(),
      memoryBytes: z.number().int().positive().optional(),
      pids: z.number().int().positive().optional(),
      timeoutMs: z.number().int().positive().optional(),
      outputBytes: z.number().int().positive().optional(),
    })
    .optional(),
  /** The org policy's runs at once per repository (the worker takes the smaller of it and REPO_CONCURRENCY). */
  concurrency: z.number().int().positive().optional(),
  /** The org policy's registries; the build pulls only from these and ALLOWED_REGISTRIES both. */
  registries: z.array(z.string()).optional(),
});
export type RunSpec = z.infer<typeof runSpecSchema>;

/** The message the queue carries: just enough to find the run record. */
export const runMessageSchema = z.object({
  runId: z.string().min(1),
});
export type RunMessage = z.infer<typeof runMessageSchema>;

/**
 * The run's state machine: every change of state is one of these named moves, and the run store
 * derives its conditional update from the move (`UPDATE … WHERE state IN (from)`), so a move that
 * lost a race (the run was cancelled, or taken by another worker) changes nothing.
 */
export const runMoves = {
  /** A worker takes a queued run. */
  claim: { from: ['queued'], to: 'running' },
  /** The task ended well, or badly, or ran out of time (the worker holding it records it). */
  succeed: { from: ['running'], to: 'succeeded' },
  fail: { from: ['running'], to: 'failed' },
  time_out: { from: ['running'], to: 'timed_out' },
  /** Someone cancelled it, a push or a closed pull request did, or the worker found it may no longer run. */
  cancel: { from: ['queued', 'running'], to: 'cancelled' },
  /** A task it needs ended without success, so it never starts. */
  skip: { from: ['queued'], to: 'cancelled' },
  /** Back to the queue: a retryable failure before the task started, or its worker died. */
  requeue: { from: ['running'], to: 'queued' },
  /** Its workers died too often: it is not tried again. */
  abandon: { from: ['running'], to: 'failed' },
} as const satisfies Record<string, { from: readonly RunState[]; to: RunState }>;

export type RunMove = keyof typeof runMoves;

/** The move that ends a running run in `state`, as a worker records the outcome of its task. */
export function finishMove(state: 'succeeded' | 'failed' | 'timed_out' | 'cancelled'): RunMove {
  switch (state) {
    case 'succeeded':
      return 'succeed';
    case 'failed':
      return 'fail';
    case 'timed_out':
      return 'time_out';
    case 'cancelled':
      return 'cancel';
  }
}

export class InvalidTransitionError extends Error {
  override readonly name = 'InvalidTransitionError';
  constructor(readonly from: RunState, readonly move: RunMove) {
    super(`a run cannot ${move.replace('_', ' ')} from ${from}`);
  }
}

/** Whether a run in `from` may make the move. */
export function canMove(from: RunState, move: RunMove): boolean {
  return (runMoves[move].from as readonly RunState[]).includes(from);
}

export function isFinal(state: RunState): boolean {
  return finalStates.has(state);
}

/** Progress a task reports: `done` of `total` (when it knows the total), with a short message. */
export interface RunProgress {
  done: number;
  total?: number;
  message?: string;
}
