/** Where run records, deliveries and audit decisions live. */
import type { Run, RunMove, RunState } from '../core/runs/run.js';

/** A run to record. `checkRunId` is set when the check run was created first (it usually is). */
export type NewRun = Omit<
  Run,
  | 'state'
  | 'checkRunId'
  | 'exitCode'
  | 'outputCid'
  | 'outputFiles'
  | 'metadata'
  | 'error'
  | 'logTail'
  | 'workerId'
  | 'leaseUntil'
  | 'createdAt'
  | 'queuedAt'
  | 'startedAt'
  | 'finishedAt'
  | 'updatedAt'
> & { checkRunId?: number | null };

export type RunPatch = Partial<
  Pick<Run, 'checkRunId' | 'exitCode' | 'outputCid' | 'outputFiles' | 'metadata' | 'error' | 'logTail'>
>;

export interface InboxDelivery {
  id: string;
  event: string;
  payload: unknown;
  receivedAt: Date;
}

export interface AuditEntry {
  at: Date;
  repo: string;
  number: number | null;
  actor: string;
  action: string;
  allowed: boolean;
  reason: string;
  runId: string | null;
}

export interface ListRunsQuery {
  state?: RunState;
  /** Any of these states. */
  states?: readonly RunState[];
  /** `owner/name`. */
  repo?: string;
  /** Pull request or issue number (with `repo`). */
  number?: number;
  limit?: number;
}

/** A check run completed `action_required`, waiting for an approval of `sha`. */
export interface ApprovalWait {
  repo: string;
  installationId: number;
  number: number;
  sha: string;
  task: string;
  checkRunId: number;
  requestedBy: string;
  createdAt: Date;
}

export interface RunStore {
  /**
   * Keeps a webhook delivery until it has been handled (an inbox, so a crash between answering
   * GitHub and acting loses nothing). False when the delivery id was seen before: a redelivery.
   */
  recordDelivery(delivery: InboxDelivery): Promise<boolean>;
  markDeliveryHandled(deliveryId: string, now: Date): Promise<void>;
  /** Deliveries received but not yet handled, oldest first. */
  pendingDeliveries(limit: number): Promise<InboxDelivery[]>;
  createRun(run: NewRun, now: Date): Promise<Run>;
  getRun(id: string): Promise<Run | null>;
  updateRun(id: string, patch: RunPatch, now: Date): Promise<Run>;
  /**
   * Makes one move of the run's state machine (`runMoves`) if the run is in one of the move's
   * `from` states (and, with `heldBy`, still held by that worker); returns the updated run, or
   * null when it was not (someone else moved it first).
   */
  transition(
    id: string,
    move: RunMove,
    now: Date,
    patch?: RunPatch & { workerId?: string | null; leaseUntil?: Date | null },
    guard?: { heldBy?: string },
  ): Promise<Run | null>;
  /** Newest first. */
  listRuns(query: ListRunsQuery): Promise<Run[]>;
  /** Queued runs, oldest first: the embedded queue's backlog. */
  listQueued(limit: number): Promise<Run[]>;
  /** Running runs whose worker lease ended before `now`: their worker is gone. */
  listExpiredLeases(now: Date): Promise<Run[]>;
  /**
   * Takes a queued run for a worker (queued → running) unless `maxRunningInRepo` runs of its
   * repository are already running: then 'busy', and the run stays queued. Null when the run is
   * no longer queued (another worker took it, or it was cancelled).
   */
  claimRun(id: string, claim: { workerId: string; leaseUntil: Date; maxRunningInRepo: number }, now: Date): Promise<Run | 'busy' | null>;
  /** Audit entries by `actor` for `action`s since a time: the per-user rate limit counts them. */
  countAudit(query: { actor: string; actions: readonly string[]; since: Date }): Promise<number>;
  recordApprovalWait(wait: ApprovalWait): Promise<void>;
  /** Takes (lists and forgets) the approval waits of a pull request. */
  takeApprovalWaits(repo: string, number: number): Promise<ApprovalWait[]>;
  /** Extends the lease of a run the worker still holds; false if the worker no longer holds it. */
  renewLease(id: string, workerId: string, leaseUntil: Date): Promise<boolean>;
  audit(entry: AuditEntry): Promise<void>;
  listAudit(repo: string): Promise<AuditEntry[]>;
  close(): Promise<void>;
}
