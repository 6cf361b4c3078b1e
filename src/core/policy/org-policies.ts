/**
 * Reads and caches each owner's org policy (`<owner>/.github`, `.github/task-mgmt.yml`, at its
 * default branch's HEAD). A `push` to that repository refreshes it at once; otherwise an entry is
 * read again after `ttlMs`, so a replica that did not receive the push catches up. Every policy
 * seen for the first time or changed is written to the audit log; an invalid policy and a missing
 * one are logged once each.
 */
import { createHash } from 'node:crypto';
import { RetryableError } from '../../ports/errors.js';
import type { RepoHost } from '../../ports/repo-host.js';
import type { AuditLog } from '../../ports/run-store.js';
import type { RepoRef } from '../runs/run.js';
import { invalidOrgPolicyLine, orgPolicyPath, orgPolicyRepo, parseOrgPolicy, type OrgPolicyState } from './org-policy.js';

export interface OrgPoliciesDeps {
  hostFor: (repo: RepoRef) => Promise<RepoHost>;
  /** Where policies seen and changed are recorded; unset (a worker's re-check) records nothing. */
  store?: Pick<AuditLog, 'audit'>;
  now: () => Date;
  /** Told once per owner and state: `warn` for an invalid policy, `info` for none. */
  log?: (level: 'info' | 'warn', message: string, facts: Record<string, unknown>) => void;
  /** How long a policy read stays fresh without a push (default a minute). */
  ttlMs?: number;
}

/** Reads one owner's policy now, from GitHub. Transient failures throw (the request fails closed). */
export async function readOrgPolicy(hostFor: OrgPoliciesDeps['hostFor'], owner: string, installationId: number): Promise<OrgPolicyState> {
  const host = await hostFor({ owner, name: orgPolicyRepo, installationId });
  const where = `\`${owner}/${orgPolicyRepo}\` \`${orgPolicyPath}\``;
  let text: string | null;
  try {
    const head = await host.getDefaultBranchHead();
    text = await host.readFile(orgPolicyPath, head.sha);
  } catch (error) {
    if (error instanceof RetryableError) throw error;
    return { kind: 'none', why: `there is no repository ${owner}/${orgPolicyRepo} this installation can read` };
  }
  if (text === null) return { kind: 'none', why: `${owner}/${orgPolicyRepo} has no ${orgPolicyPath}` };
  const digest = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const parsed = parseOrgPolicy(text);
  if (!parsed.ok) return { kind: 'invalid', where, line: parsed.line, field: parsed.field, message: parsed.message, digest };
  return { kind: 'policy', where, policy: parsed.policy, digest };
}

function stateKey(state: OrgPolicyState): string {
  return state.kind === 'none' ? `none:${state.why}` : `${state.kind}:${state.digest}`;
}

export class OrgPolicies {
  private readonly cache = new Map<string, { state: OrgPolicyState; readAt: number }>();
  /** The last state each owner was seen in, to record changes and log once. */
  private readonly seen = new Map<string, string>();
  private readonly reading = new Map<string, Promise<OrgPolicyState>>();

  constructor(private readonly deps: OrgPoliciesDeps) {}

  /** The policy the repository's owner sets now. */
  async for(repo: Pick<RepoRef, 'owner' | 'installationId'>): Promise<OrgPolicyState> {
    const key = repo.owner.toLowerCase();
    const cached = this.cache.get(key);
    if (cached && this.deps.now().getTime() - cached.readAt < (this.deps.ttlMs ?? 60_000)) return cached.state;
    return this.read(repo.owner, repo.installationId);
  }

  /** A push to `<owner>/.github`: read the policy again now. */
  async refresh(owner: string, installationId: number): Promise<OrgPolicyState> {
    this.cache.delete(owner.toLowerCase());
    return this.read(owner, installationId);
  }

  /** Whether a repository is the one that holds its owner's policy. */
  static holdsPolicy(repo: Pick<RepoRef, 'name'>): boolean {
    return repo.name.toLowerCase() === orgPolicyRepo;
  }

  private read(owner: string, installationId: number): Promise<OrgPolicyState> {
    const key = owner.toLowerCase();
    const pending = this.reading.get(key);
    if (pending) return pending;
    const work = readOrgPolicy(this.deps.hostFor, owner, installationId)
      .then(async (state) => {
        this.cache.set(key, { state, readAt: this.deps.now().getTime() });
        await this.noticed(owner, installationId, state);
        return state;
      })
      .finally(() => this.reading.delete(key));
    this.reading.set(key, work);
    return work;
  }

  private async noticed(owner: string, installationId: number, state: OrgPolicyState): Promise<void> {
    const key = owner.toLowerCase();
    const now = stateKey(state);
    const before = this.seen.get(key);
    if (before === now) return;
    this.seen.set(key, now);
    const facts = { owner, installationId };
    if (state.kind === 'none') this.deps.log?.('info', `no org policy for ${owner}: ${state.why}`, facts);
    if (state.kind === 'invalid') this.deps.log?.('warn', `${invalidOrgPolicyLine(state)}`, { ...facts, line: state.line, field: state.field });
    const reason =
      state.kind === 'none'
        ? `no org policy: ${state.why}`
        : state.kind === 'invalid'
          ? `org policy ${state.digest} seen, invalid: ${invalidOrgPolicyLine(state)}`
          : `org policy ${state.digest} seen and in force`;
    await this.deps.store?.audit({
      at: this.deps.now(),
      repo: `${owner}/${orgPolicyRepo}`,
      number: null,
      actor: 'org-policy',
      action: 'policy',
      allowed: state.kind !== 'invalid',
      reason: before === undefined ? reason : `changed: ${reason}`,
      runId: null,
    });
  }
}
