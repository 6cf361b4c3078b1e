/**
 * What a request to the run service names: who asks, where, and what the service needs from
 * outside (one named object). Shared by the use cases of this folder.
 */
import type { TaskTypeCatalog } from '../manifest/load-manifest.js';
import type { CheckReporter } from '../../ports/check-reporter.js';
import type { CollaboratorPermission, RepoHost } from '../../ports/repo-host.js';
import type { RunQueue } from '../../ports/run-queue.js';
import type { ApprovalWaits, AuditLog, Pins, RunRecords } from '../../ports/run-store.js';
import type { PinTtlLimits } from '../pins/pin-ttl.js';
import type { OrgPolicies } from '../policy/org-policies.js';
import type { OrgPolicyState } from '../policy/org-policy.js';
import type { IdGenerator } from '../runs/ids.js';
import type { RepoRef, Requester, Trigger } from '../runs/run.js';

/** Where a run is asked for, and so which commit runs. */
export type RunTarget =
  /** The pull request's head, as GitHub reports it when the request is decided. */
  | { kind: 'pull_request'; number: number }
  /** The default branch's HEAD, asked for on an issue (whose number the run records). */
  | { kind: 'issue'; number: number; defaultBranch?: string }
  /** The default branch's HEAD, with no issue (the API without `ref`, schedules). */
  | { kind: 'default_branch'; defaultBranch?: string };

export interface RunRequest {
  requester: Requester;
  repo: RepoRef;
  target: RunTarget;
  /** null: every task. */
  task: string | null;
  params: Record<string, string>;
  trigger: Trigger;
  /** The comment that asked, recorded with the run. */
  commentId?: number | null;
  /** The SHA the requester saw (Re-run, /retry): refused if the head has moved since. */
  expectedSha?: string;
  /** A scheduled firing: the shortest time between two firings of its schedule, for the org policy's `limits.schedule_every`. */
  scheduleIntervalMs?: number;
}

/** Which runs to cancel: one, or every queued and running run of a pull request or issue. */
export type CancelScope = { kind: 'run'; runId: string } | { kind: 'all'; number: number };

export interface RunServiceDeps {
  /** The runs, the audit log (which also counts commands for the limit), approval waits, and the runs' pins. */
  store: RunRecords & AuditLog & ApprovalWaits & Pick<Pins, 'listPins' | 'extendPins'>;
  queue: RunQueue;
  checks: CheckReporter;
  /** Reads from the code host, for one repository. */
  hostFor: (repo: RepoRef) => Promise<RepoHost>;
  newId: IdGenerator;
  now: () => Date;
  gatewayUrl: string;
  /** Commands (run, retry, re-run, cancel) one requester may give per minute. */
  commandsPerMinute: number;
  /** The task types `uses:` may name. */
  taskTypes: TaskTypeCatalog;
  /** Base image of Procfile tasks that name none. */
  defaultImage: string;
  /** PIN_TTL_DEFAULT and PIN_TTL_MAX; 30 and 365 days unless given. */
  pinTtl?: PinTtlLimits;
  /** Each owner's org policy (`<owner>/.github`); without it, no org policy applies. */
  orgPolicies?: Pick<OrgPolicies, 'for' | 'refresh'>;
}

/**
 * What a requester that is not a GitHub user is worth: a service token carries the operator's
 * trust and the App acting on its own the installation's, both as the admin role. The review gate
 * still applies to pull requests whoever asks.
 */
const trustedPermission = (roleName: string): CollaboratorPermission => ({
  permission: 'admin',
  roleName,
  flags: { admin: true, maintain: true, push: true, triage: true, pull: true },
});

/** The requester's role on the repository now: GitHub's answer for a user. */
export async function permissionOf(host: RepoHost, requester: Requester): Promise<CollaboratorPermission> {
  switch (requester.kind) {
    case 'user':
      return host.getPermission(requester.login);
    case 'service':
      return trustedPermission('service token');
    case 'app':
      return trustedPermission('the App');
  }
}

export function fullName(repo: Pick<RepoRef, 'owner' | 'name'>): string {
  return `${repo.owner}/${repo.name}`;
}

export function numberOf(target: RunTarget): number | null {
  return target.kind === 'default_branch' ? null : target.number;
}

/** The commit a request at `target` runs: the PR head, or the default branch's HEAD. */
export async function headOf(host: RepoHost, target: RunTarget): Promise<string> {
  if (target.kind === 'pull_request') return (await host.getPullRequest(target.number)).headSha;
  return (await host.getDefaultBranchHead(target.defaultBranch)).sha;
}

/** The org policy that applies to `repo` now; none when the service has no org policies. */
export async function orgPolicyOf(deps: Pick<RunServiceDeps, 'orgPolicies'>, repo: RepoRef): Promise<OrgPolicyState> {
  return deps.orgPolicies ? deps.orgPolicies.for(repo) : { kind: 'none', why: 'this deployment reads no org policy' };
}
