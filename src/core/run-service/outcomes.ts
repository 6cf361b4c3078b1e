/**
 * What the run service's use cases come to, as data. The service never replies, reacts or picks
 * an HTTP status: the webhook adapter renders these as comments and reactions, the JSON API as
 * statuses and bodies, the CLI as lines.
 */
import type { LoadedManifest, ManifestError } from '../manifest/load-manifest.js';
import type { Run } from '../runs/run.js';
import type { OrgPolicyState } from '../policy/org-policy.js';

/** Why a request was refused, for adapters that map refusals to codes (the API's 404 vs 422). */
export type RefusalCode =
  /** The requester's role is below what the request needs. */
  | 'role'
  /** More commands in the last minute than `COMMANDS_PER_MINUTE`. */
  | 'rate_limited'
  /** The run, pull request or task named does not exist (here). */
  | 'not_found'
  /** The pull request is closed or merged. */
  | 'closed'
  /** The head moved since the requester looked (Re-run, /retry). */
  | 'head_moved'
  /** The task definition has errors; a `task-mgmt / manifest` check run shows where. */
  | 'manifest'
  /** A parameter is missing or does not match its rule, or no task declares it. */
  | 'params'
  /** The commit declares no task, or asks for what this deployment does not give. */
  | 'not_runnable'
  /** Nothing to do: no run to cancel, nothing failed to retry. */
  | 'nothing_to_do'
  /** The org policy (`<owner>/.github`) forbids it, or is invalid: the reason names the rule and the file. */
  | 'org_policy';

export interface Refused {
  kind: 'refused';
  code: RefusalCode;
  /** One sentence for a person: what is missing, and what to do about it. */
  reason: string;
  /**
   * Past the command limit, after the refusal that said so: adapters that write where others
   * read (GitHub comments) answer nothing. The audit log still has it.
   */
  silent?: boolean;
}

export type RequestOutcome =
  | { kind: 'queued'; sha: string; runs: Run[] }
  /** Refused until someone approves `sha`; a check run completed `action_required` says so. */
  | { kind: 'waiting'; sha: string; reason: string }
  | Refused;

export type CancelOutcome =
  | { kind: 'cancelled'; runs: Run[] }
  /** The one run named had already ended; `run` is as it ended. */
  | { kind: 'already_ended'; run: Run }
  | Refused;

export type PinOutcome =
  /**
   * The run's pins now end at `pinnedUntil` (the later of their expiry and the one asked for);
   * `extended` is false when they already lasted longer than asked.
   */
  | { kind: 'pinned'; run: Run; pinnedUntil: Date; extended: boolean }
  | Refused;

export type HelpOutcome =
  | { kind: 'tasks'; sha: string; manifest: LoadedManifest; org?: OrgPolicyState }
  | { kind: 'manifest_errors'; sha: string; errors: ManifestError[]; org?: OrgPolicyState }
  | { kind: 'no_tasks'; sha: string; reason: string; org?: OrgPolicyState }
  /** GitHub could not be asked just now. */
  | { kind: 'unavailable'; error: string }
  | Refused;

/** A comment that was no command the app can carry out (a near miss, a usage error). */
export type UsageOutcome = { kind: 'usage'; message: string } | Refused;

export interface PushOutcome {
  /** Runs of the old head that were cancelled. */
  cancelled: string[];
  /** Approval requests of the old head now marked stale. */
  stale: number;
}

/** A push to a branch: what it changed of the org policy (and schedules). */
export interface BranchPushOutcome {
  /** The push moved the default branch: its schedules are read again. */
  defaultBranch: boolean;
  /** The org policy read again, when the push was to the default branch of `<owner>/.github`. */
  orgPolicy: OrgPolicyState['kind'] | null;
}

export interface ClosedOutcome {
  /** Queued and running runs of the pull request that were cancelled. */
  cancelled: string[];
  /** Requests of the pull request that were waiting for an approval, now ended. */
  ended: number;
}

export type BeforeStartOutcome = { allowed: true; note: string } | { allowed: false; reason: string };
