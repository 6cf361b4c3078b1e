/** The run record: one task run at one pinned commit (DESIGN "Run record and states"). */
import { z } from 'zod';

export const runStates = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out'] as const;
export type RunState = (typeof runStates)[number];
export const finalStates: ReadonlySet<RunState> = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);

/** How the run was asked for. */
export const triggers = ['comment', 'rerun', 'api'] as const;
export type Trigger = (typeof triggers)[number];

export const repoRefSchema = z.object({
  owner: z.string().min(1),
  name: z.string().min(1),
  /** GitHub App installation that can act on the repository. */
  installationId: z.number().int().positive(),
});
export type RepoRef = z.infer<typeof repoRefSchema>;

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
  requestedBy: string;
  trigger: Trigger;
  /** Ids of the approving reviews the policy counted (empty when no review was needed). */
  approvals: number[];
  /** Digest of the files that define the task at `sha` (their git blob ids). */
  manifestDigest: string;
  state: RunState;
  checkRunId: number | null;
  commentId: number | null;
  exitCode: number | null;
  outputCid: string | null;
  outputFiles: OutputFile[];
  /** Facts the task recorded about its outputs (a ZIM's title, counts…). */
  metadata: Record<string, unknown>;
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
});
export type RunSpec = z.infer<typeof runSpecSchema>;

/** The message the queue carries: just enough to find the run record. */
export const runMessageSchema = z.object({
  runId: z.string().min(1),
});
export type RunMessage = z.infer<typeof runMessageSchema>;

const transitions: Record<RunState, readonly RunState[]> = {
  queued: ['running', 'cancelled', 'failed'],
  running: ['succeeded', 'failed', 'cancelled', 'timed_out', 'queued'],
  succeeded: [],
  failed: [],
  cancelled: [],
  timed_out: [],
};

export class InvalidTransitionError extends Error {
  override readonly name = 'InvalidTransitionError';
  constructor(readonly from: RunState, readonly to: RunState) {
    super(`a run cannot go from ${from} to ${to}`);
  }
}

export function canTransition(from: RunState, to: RunState): boolean {
  return transitions[from].includes(to);
}

export function assertTransition(from: RunState, to: RunState): void {
  if (!canTransition(from, to)) throw new InvalidTransitionError(from, to);
}

export function isFinal(state: RunState): boolean {
  return finalStates.has(state);
}
