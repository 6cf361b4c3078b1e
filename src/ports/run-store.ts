/**
 * Where runs, their leases and logs, webhook deliveries, audit decisions and approval waits live. One
 * database keeps them all, but each concern is its own small port, so a consumer names only the
 * part it uses (the way BullMQ sections its backend interface): the worker needs run records and
 * leases and its run's log, the HTTP API run records, logs and the audit log, the webhook intake
 * its inbox. `RunStore` is every section plus `close()`: what an adapter implements and the
 * composition root holds.
 */
import type { Run, RunMove, RunState } from '../core/runs/run.js';

// ─── Run records ────────────────────────────────────────────────────────────────────────────

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

/** What a move may change besides the state: the patched fields, and who holds the run until when. */
export type MovePatch = RunPatch & { workerId?: string | null; leaseUntil?: Date | null };

/** Conditions a move must meet besides the run's state. */
export interface MoveGuard {
  /** Only while this worker holds the run: a worker that lost its run (cancelled, handed to another worker) changes nothing. */
  heldBy?: string;
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

/**
 * The run records and their state. A run changes state only by a move of its state machine
 * (`runMoves` in src/core/runs/run.ts), made atomically: a move that lost a race changes nothing.
 */
export interface RunRecords {
  /** Records a run, `queued`. Rejects an id recorded before. */
  createRun(run: NewRun, now: Date): Promise<Run>;
  getRun(id: string): Promise<Run | null>;
  /** Changes fields but never the state. Rejects an unknown id. */
  updateRun(id: string, patch: RunPatch, now: Date): Promise<Run>;
  /**
   * Makes one move of the run's state machine if the run is in one of the move's `from` states
   * (and, with `heldBy`, still held by that worker); returns the updated run, or null when it
   * was not (someone else moved it first). Entering `running` sets `startedAt`; entering
   * `queued` sets `queuedAt` and clears `startedAt`; a final state sets `finishedAt` and clears
   * the worker and its lease.
   */
  transition(id: string, move: RunMove, now: Date, patch?: MovePatch, guard?: MoveGuard): Promise<Run | null>;
  /** Newest first; `limit` defaults to 50 and stops at 500. */
  listRuns(query: ListRunsQuery): Promise<Run[]>;
  /** Queued runs, oldest `queuedAt` first: the embedded queue's backlog. */
  listQueued(limit: number): Promise<Run[]>;
}

// ─── Run leases ─────────────────────────────────────────────────────────────────────────────

/**
 * Which worker holds a running run, and until when. A worker renews its lease while it works; a
 * lease that ran out means the worker is gone, and the run can be recovered.
 */
export interface RunLeases {
  /**
   * Takes a queued run for a worker (the move `claim`) unless `maxRunningInRepo` runs of its
   * repository are already running: then 'busy', and the run stays queued. Null when the run is
   * no longer queued (another worker took it, or it was cancelled).
   */
  claimRun(id: string, claim: { workerId: string; leaseUntil: Date; maxRunningInRepo: number }, now: Date): Promise<Run | 'busy' | null>;
  /** Extends the lease of a run the worker still holds; false if the worker no longer holds it. */
  renewLease(id: string, workerId: string, leaseUntil: Date): Promise<boolean>;
  /** Running runs whose worker lease ended before `now` (or that have none): their worker is gone. */
  listExpiredLeases(now: Date): Promise<Run[]>;
}

// ─── Webhook inbox ──────────────────────────────────────────────────────────────────────────

export interface InboxDelivery {
  id: string;
  event: string;
  payload: unknown;
  receivedAt: Date;
}

/**
 * Webhook deliveries kept until they have been handled: GitHub is answered at once, so a crash
 * between answering and acting loses nothing, and a redelivery is recognised by its id.
 */
export interface WebhookInbox {
  /** False when the delivery id was seen before (handled or not): a redelivery. */
  recordDelivery(delivery: InboxDelivery): Promise<boolean>;
  /** Ignores an unknown id. */
  markDeliveryHandled(deliveryId: string, now: Date): Promise<void>;
  /** Deliveries received but not yet handled, oldest first. */
  pendingDeliveries(limit: number): Promise<InboxDelivery[]>;
}

// ─── Audit log ──────────────────────────────────────────────────────────────────────────────

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

/** Every decision of the policy, allowed or refused, with its reason; the rate limits count it. */
export interface AuditLog {
  audit(entry: AuditEntry): Promise<void>;
  /** A repository's entries (`owner/name`), in the order they were recorded. */
  listAudit(repo: string): Promise<AuditEntry[]>;
  /** Entries by `actor` for `action`s since a time. */
  countAudit(query: { actor: string; actions: readonly string[]; since: Date }): Promise<number>;
  /**
   * The per-user command limit, decided and recorded in one transaction, so concurrent commands
   * cannot all see room for one more: counts `actor`'s entries for `actions` since `since`, and
   * records `entry` when there are fewer than `limit`, else `refusal`.
   */
  admitCommand(command: CommandAdmission): Promise<AdmissionOutcome>;
}

export interface CommandAdmission {
  actor: string;
  /** The actions that count (both `entry` and `refusal` should be one of them). */
  actions: readonly string[];
  since: Date;
  limit: number;
  entry: AuditEntry;
  refusal: AuditEntry;
}

export type AdmissionOutcome =
  | { admitted: true }
  | {
      admitted: false;
      /** Counted entries since `since`, before this refusal. */
      count: number;
      /** How many of them were refused (`allowed: false`). */
      refused: number;
      /** When the newest `limit` of them were recorded, newest first. */
      newest: Date[];
    };

// ─── Approval waits ─────────────────────────────────────────────────────────────────────────

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

/** Requests that wait for an approving review: an approval of the pull request takes them up. */
export interface ApprovalWaits {
  recordApprovalWait(wait: ApprovalWait): Promise<void>;
  /** Takes (lists and forgets) the approval waits of a pull request. */
  takeApprovalWaits(repo: string, number: number): Promise<ApprovalWait[]>;
}

// ─── Run logs ───────────────────────────────────────────────────────────────────────────────

/** Most bytes one `readLog` returns, and one `appendLog` takes: a reader's memory stays bounded. */
export const LOG_CHUNK_MAX_BYTES = 1024 * 1024;

/** What is known of a run's log without reading it. */
export interface LogInfo {
  /** Bytes ever appended: the offset the next chunk goes at. Zero for a run that wrote nothing. */
  size: number;
  /** The bytes dropped to keep the log under its cap, `[from, to)` in stream offsets; null when nothing was cut. */
  cut: { from: number; to: number } | null;
}

export interface LogRead extends LogInfo {
  /** Where `bytes` start: the offset asked for, or the end of the cut when that offset was cut. */
  offset: number;
  /** At most the limit asked for; empty at the end of the log. Never spans the cut. */
  bytes: Uint8Array;
}

/** Appending at an offset other than the log's end (a gap, or an overlap with what is stored). */
export class LogOffsetError extends Error {
  override readonly name = 'LogOffsetError';
  constructor(
    readonly runId: string,
    readonly offset: number,
    readonly size: number,
  ) {
    super(`the log of run ${runId} ends at byte ${size}, not ${offset}`);
  }
}

/**
 * Run logs, kept where every process can serve them whichever worker ran the task: a log is a
 * stream of bytes in chunks, addressed by stream offset (byte n of everything the run printed).
 *
 * The cap (LOG_MAX_BYTES, passed with each append) keeps the head and the tail: chunks that
 * start in the first half of the cap stay for good; after them the newest chunks that fit in
 * what the head leaves of the cap stay, the oldest of them dropped as new ones come (the newest
 * chunk always stays). What was dropped is one growing gap, `cut`. Offsets never move, so a
 * reader following at an offset that was cut meanwhile learns it from `readLog`, which answers
 * from the end of the cut.
 */
export interface RunLogs {
  /**
   * Appends `bytes` (at most LOG_CHUNK_MAX_BYTES) at `offset`, which must be the log's size, and
   * drops what the cap `maxBytes` no longer holds. A chunk that ends at or before the log's end
   * is taken as a repeated append and changes nothing; any other offset is a LogOffsetError.
   */
  appendLog(runId: string, chunk: { offset: number; bytes: Uint8Array }, maxBytes: number): Promise<LogInfo>;
  /** Up to `limit` bytes (at most LOG_CHUNK_MAX_BYTES) from `offset`, from one consistent view of the log. */
  readLog(runId: string, offset: number, limit?: number): Promise<LogRead>;
  logInfo(runId: string): Promise<LogInfo>;
}

// ─── All of it ──────────────────────────────────────────────────────────────────────────────

/** Every section, as one adapter implements them over one database. */
export interface RunStore extends RunRecords, RunLeases, WebhookInbox, AuditLog, ApprovalWaits, RunLogs {
  close(): Promise<void>;
}
