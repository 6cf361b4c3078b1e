/** Table shapes shared by the SQL run stores. Times are epoch milliseconds. */
import type { Generated } from 'kysely';

export interface RunsTable {
  id: string;
  repo_owner: string;
  repo_name: string;
  installation_id: number;
  number: number | null;
  is_pull_request: number;
  sha: string;
  task: string;
  task_type: string;
  dockerfile: string;
  params: string;
  requested_by: string;
  /** user | service | app (RequesterKind). */
  requester_kind: string;
  /** write | maintain | admin (RequiredRole). */
  required_role: string;
  trigger: string;
  approvals: string;
  manifest_digest: string;
  spec: string;
  needs: string;
  metadata: string;
  state: string;
  check_run_id: number | null;
  comment_id: number | null;
  exit_code: number | null;
  output_cid: string | null;
  output_files: string;
  error: string | null;
  log_tail: string | null;
  worker_id: string | null;
  lease_until: number | null;
  created_at: number;
  queued_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
  /** Latest expiry of the run's complete pins. */
  pinned_until: number | null;
  /** CID of the run's provenance record. */
  provenance_cid: string | null;
  /** The latest progress the task reported, as JSON. */
  progress: string | null;
}

export interface DeliveriesTable {
  id: string;
  event: string;
  payload: string;
  received_at: number;
  handled_at: number | null;
}

export interface AuditTable {
  id: Generated<number>;
  at: number;
  repo: string;
  number: number | null;
  actor: string;
  action: string;
  allowed: number;
  reason: string;
  run_id: string | null;
}

export interface ApprovalWaitsTable {
  id: Generated<number>;
  repo: string;
  installation_id: number;
  number: number;
  sha: string;
  task: string;
  check_run_id: number;
  requested_by: string;
  created_at: number;
}

export interface PinsTable {
  run_id: string;
  /** outputs | provenance (PinKind). */
  kind: string;
  /** The pinned CID, or `adding:<run>:<kind>` while the add is under way. */
  root: string;
  complete: number;
  pinned_until: number;
  created_at: number;
}

export interface PinBlocksTable {
  root: string;
  block: string;
}

export interface PinGarbageTable {
  block: string;
  marked_at: number;
}

export interface NamedLeasesTable {
  name: string;
  holder: string;
  held_until: number;
}

/** One row per run log: stream offsets, in bytes (RunLogs in src/ports/run-store.ts). */
export interface RunLogsTable {
  run_id: string;
  /** Bytes ever appended. */
  size: number;
  /** End of the head kept for good; the cut runs from here to `tail_start`. */
  head_end: number;
  /** First byte of the tail kept; equal to `head_end` while nothing was cut. */
  tail_start: number;
}

export interface RunLogChunksTable {
  run_id: string;
  byte_offset: number;
  bytes: Uint8Array;
}

export interface Database {
  approval_waits: ApprovalWaitsTable;
  runs: RunsTable;
  deliveries: DeliveriesTable;
  audit: AuditTable;
  run_logs: RunLogsTable;
  run_log_chunks: RunLogChunksTable;
  pins: PinsTable;
  pin_blocks: PinBlocksTable;
  pin_garbage: PinGarbageTable;
  named_leases: NamedLeasesTable;
  check_outbox: CheckOutboxTable;
}

/** Check-run updates GitHub did not take yet, one per run (src/ports/run-store.ts CheckOutbox). */
export interface CheckOutboxTable {
  run_id: string;
  /** The CheckReport as JSON. */
  report: string;
  kept_at: number;
  attempts: number;
}
