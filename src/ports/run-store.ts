/**
 * Where runs, their leases and logs, webhook deliveries, audit decisions and approval waits live. One
 * database keeps them all, but each concern is its own small port, so a consumer names only the
 * part it uses (the way BullMQ sections its backend interface): the worker needs run records and
 * leases and its run's log, the HTTP API run records, logs and the audit log, the webhook intake
 * its inbox. `RunStore` is every section plus `close()`: what an adapter implements and the
 * composition root holds.
 */
import type { RepoRef, Run, RunMove, RunState } from '../core/runs/run.js';

// ─── Run records ────────────────────────────────────────────────────────────────────────────

/** A run to record. `checkRunId` is set when the check run was created first (it usually is). */
export type NewRun = Omit<
  Run,
  | 'state'
  | 'checkRunId'
  | 'exitCode'
  | 'outputCid'
  | 'outputFiles'
  | 'pinnedUntil'
  | 'provenanceCid'
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
  Pick<Run, 'checkRunId' | 'exitCode' | 'outputCid' | 'outputFiles' | 'provenanceCid' | 'metadata' | 'error' | 'logTail' | 'progress'>
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
  /** How many runs are queued: the embedded queue's depth. */
  countQueued(): Promise<number>;
}

// ─── Run leases ─────────────────────────────────────────────────────────────────────────────

/** A worker taking a run: who, until when its lease runs, and on what terms (see claimRun). */
export interface RunClaim {
  workerId: string;
  leaseUntil: Date;
  maxRunningInRepo: number;
  onlyWithoutNeeds?: boolean;
}

/**
 * Which worker holds a running run, and until when. A worker renews its lease while it works; a
 * lease that ran out means the worker is gone, and the run can be recovered.
 */
export interface RunLeases {
  /**
   * Takes a queued run for a worker (the move `claim`) unless `maxRunningInRepo` runs of its
   * repository are already running, or its own `spec.concurrency` when that is lower: then 'busy',
   * and the run stays queued. Null when the run is no longer queued (another worker took it, or it
   * was cancelled), or, with `onlyWithoutNeeds`, when it needs other tasks: it stays queued for a
   * caller that checks them first.
   */
  claimRun(id: string, claim: RunClaim, now: Date): Promise<Run | 'busy' | null>;
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

// ─── Pins ───────────────────────────────────────────────────────────────────────────────────

/** What a run pins: the folder its task wrote, and the provenance record written about it. */
export const pinKinds = ['outputs', 'provenance'] as const;
export type PinKind = (typeof pinKinds)[number];

/** A run keeps `root` (and every block below it) until `pinnedUntil`. */
export interface Pin {
  runId: string;
  kind: PinKind;
  /** Root CID; null while the add is under way (the blocks are indexed, the root is not known yet). */
  root: string | null;
  pinnedUntil: Date;
}

/** A live pin that holds a block, with the repository of its run: whoever may read that run may read the block. */
export interface PinHolder {
  runId: string;
  kind: PinKind;
  root: string;
  pinnedUntil: Date;
  repo: RepoRef;
}

/**
 * Pins with an expiry, and the index of the blocks below each pinned root, so that whether a
 * block is under a live pin (and of which runs) is one indexed query, and the collector deletes
 * a block only when no pin's index lists it any more (reference counting across runs).
 *
 * An add indexes its blocks as it writes them, before its root is known: `startPin`, then
 * `indexPinBlocks` in batches, then `completePin` with the root. A pin that never completes (its
 * worker died) expires like any other, and its blocks are collected.
 */
export interface Pins {
  /** Opens the run's pin of `kind` until `pinnedUntil`, its root not yet known; replaces an earlier pin of the same run and kind. */
  startPin(pin: { runId: string; kind: PinKind; pinnedUntil: Date }, now: Date): Promise<void>;
  /** Adds blocks to the index of the run's open pin of `kind` (repeats are ignored). Rejects when no such pin is open. */
  indexPinBlocks(pin: { runId: string; kind: PinKind }, blocks: readonly string[]): Promise<void>;
  /**
   * Names the root of the run's open pin of `kind`: its index becomes the root's (merged with the
   * index of another run that pinned the same root), and the run's `pinnedUntil` becomes the
   * latest of its pins. Rejects when no such pin is open.
   */
  completePin(pin: { runId: string; kind: PinKind; root: string }, now: Date): Promise<Pin>;
  /** The run's pins, `outputs` first. */
  listPins(runId: string): Promise<Pin[]>;
  /**
   * Moves every pin of the run to `max(current, until)`, and the run's `pinnedUntil` with them;
   * returns the run's new `pinnedUntil`, or null when the run has no pin (never pinned, or collected).
   */
  extendPins(runId: string, until: Date): Promise<Date | null>;
  /**
   * Complete pins live at `now` (ending after it) whose root's index lists `block`, latest expiry
   * first, at most `limit` (default 100). `block` is matched as written: the CID's string as the
   * add reported it (CIDv0 `Qm…` for dag-pb blocks under `unixfs-v0-2015`, CIDv1 otherwise).
   */
  livePinsHolding(block: string, now: Date, limit?: number): Promise<PinHolder[]>;
  /**
   * Removes at most `limit` pins that ended at or before `now` (a pin extended meanwhile stays).
   * When a removed pin was the last on its root, the root's index is dropped and each of its
   * blocks that no other pin's index lists is marked as garbage at `now`. Returns the removed
   * pins and the roots no pin holds any more (to unpin on a backend that pins roots itself).
   */
  removeExpiredPins(now: Date, limit: number): Promise<{ removed: Pin[]; released: string[] }>;
  /**
   * At most `limit` garbage blocks marked at or before `markedBefore` that still no pin's index
   * lists: the blocks to delete. Marks of blocks that a pin holds again are dropped.
   */
  garbageBlocks(markedBefore: Date, limit: number): Promise<string[]>;
  /** Forgets garbage marks, once their blocks are deleted. */
  forgetGarbage(blocks: readonly string[]): Promise<void>;
}

// ─── Named leases ───────────────────────────────────────────────────────────────────────────

/**
 * One holder at a time across replicas for periodic work (the pin collector): a lease row per
 * name, taken when free or expired, renewed by its holder.
 */
export interface NamedLeases {
  /** Takes or renews the lease `name` for `holder` until `until`; false while another holder's lease lasts past `now`. */
  takeLease(name: string, holder: string, until: Date, now: Date): Promise<boolean>;
  /** Ends `holder`'s lease `name`; ignores a lease held by someone else. */
  releaseLease(name: string, holder: string): Promise<void>;
}

// ─── Retention ──────────────────────────────────────────────────────────────────────────────

/** What one pruning round deleted. */
export interface Pruned {
  /** Webhook deliveries handled before the cut-off (pending ones are never pruned). */
  deliveries: number;
  audit: number;
  /** Stored pieces of the logs of runs that ended before the cut-off (a log's record goes with its last piece). */
  logChunks: number;
}

/**
 * RETENTION (README "Configuration"): what is kept only for a while. Each call deletes a bounded
 * batch, so a large backlog never holds the database for long; callers repeat while a count
 * reaches the limit. Runs themselves, their pins and their log tails are kept.
 */
export interface Retention {
  /** Deletes at most `limit` rows of each kind older than `before`. */
  pruneBefore(before: Date, limit: number): Promise<Pruned>;
}

// ─── All of it ──────────────────────────────────────────────────────────────────────────────

// ─── Check-run outbox ──────────────────────────────────────────────────────────────────────

/** A check-run update GitHub did not take, kept until it does. */
export interface PendingCheckUpdate {
  runId: string;
  /** The report as JSON (a CheckReport): the newest one kept for the run. */
  report: unknown;
  keptAt: Date;
  /** Times a send failed since it was kept. */
  attempts: number;
}

/**
 * Undelivered check-run updates, one per run (a newer report replaces an older one: only the
 * latest state matters), so that a run's final state reaches GitHub even across a restart.
 */
export interface CheckOutbox {
  /** Keeps `report` as the run's update to send, replacing any kept before. */
  keepCheckUpdate(runId: string, report: unknown, now: Date): Promise<void>;
  /** The kept updates, oldest first. */
  listCheckUpdates(limit: number): Promise<PendingCheckUpdate[]>;
  /** Counts a failed send of the run's kept update. */
  checkUpdateFailed(runId: string): Promise<void>;
  /** Forgets the run's update if it was kept at or before `keptAt`: a newer one stays. */
  dropCheckUpdate(runId: string, keptAt: Date): Promise<void>;
}

/** Every section, as one adapter implements them over one database. */
export interface RunStore extends RunRecords, RunLeases, WebhookInbox, AuditLog, ApprovalWaits, RunLogs, Pins, NamedLeases, Retention, CheckOutbox {
  close(): Promise<void>;
}
