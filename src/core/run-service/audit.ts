/**
 * The audit log's entries and the per-person command limit, built in one place: every decision
 * the run service takes, allowed or refused, is recorded with its reason, and the limit counts
 * those records.
 */
import type { AuditEntry, AuditLog } from '../../ports/run-store.js';
import type { RepoRef, Requester } from '../runs/run.js';

/** Audit actions that count toward `COMMANDS_PER_MINUTE` (refusals included). */
export type AuditAction = 'run' | 'rerun' | 'retry' | 'cancel' | 'push' | 'close';
const limitedActions: readonly AuditAction[] = ['run', 'rerun', 'retry', 'cancel'];

export interface AuditFacts {
  repo: RepoRef;
  number: number | null;
  requester: Requester;
  action: AuditAction;
  allowed: boolean;
  reason: string;
  runId?: string | null;
}

export function auditEntry(at: Date, facts: AuditFacts): AuditEntry {
  return {
    at,
    repo: `${facts.repo.owner}/${facts.repo.name}`,
    number: facts.number,
    actor: facts.requester.login,
    action: facts.action,
    allowed: facts.allowed,
    reason: facts.reason,
    runId: facts.runId ?? null,
  };
}

export async function record(store: Pick<AuditLog, 'audit'>, at: Date, facts: AuditFacts): Promise<void> {
  await store.audit(auditEntry(at, facts));
}

/**
 * Null while the requester is within the limit; otherwise why not. The App's own requests
 * (schedules) are bounded by the org policy, not by this limit.
 */
export async function overCommandLimit(
  store: Pick<AuditLog, 'countAudit'>,
  now: Date,
  requester: Requester,
  perMinute: number,
  command: string,
): Promise<string | null> {
  if (requester.kind === 'app') return null;
  const recent = await store.countAudit({ actor: requester.login, actions: limitedActions, since: new Date(now.getTime() - 60_000) });
  if (recent < perMinute) return null;
  return `@${requester.login} gave ${recent} commands in the last minute, and the limit is ${perMinute}; wait a minute before the next \`${command}\`.`;
}
