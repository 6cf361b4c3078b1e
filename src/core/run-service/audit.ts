/**
 * The audit log's entries and the per-person command limit, built in one place: every decision
 * the run service takes, allowed or refused, is recorded with its reason, and the limit counts
 * those records.
 */
import type { AuditEntry, AuditLog } from '../../ports/run-store.js';
import type { RepoRef, Requester } from '../runs/run.js';

/**
 * What the audit log records. `command` is the per-person limit's own entry: one for every
 * command asked (a run, retry, Re-run, cancel, pin, `/help` or an answered near miss), admitted or
 * refused, written when the limit decides; the decision that follows has its own entry.
 */
export type AuditAction = 'run' | 'rerun' | 'retry' | 'cancel' | 'pin' | 'push' | 'close' | 'command';
const commandAction: AuditAction = 'command';

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

/** Past the limit, `silent` once the requester has been told so within the last minute. */
export type Admission = { admitted: true } | { admitted: false; reason: string; silent: boolean };

const windowMs = 60_000;

/**
 * The per-person command limit (`COMMANDS_PER_MINUTE`): counts the requester's commands of the
 * last minute and records this one, in one step of the store, so concurrent commands cannot all
 * see room for one more. Refused commands count too: someone who keeps commanding past the limit
 * stays refused. The first refusal is answered with the time the requester may command again;
 * the next ones, while a refusal of the last minute is on record, are silent, so the limit
 * cannot be used to make the app write endlessly. The App's own requests (schedules) are bounded
 * by the org policy, not by this limit.
 */
export async function admitCommand(
  store: Pick<AuditLog, 'admitCommand'>,
  now: Date,
  asked: { repo: RepoRef; number: number | null; requester: Requester; command: string },
  perMinute: number,
): Promise<Admission> {
  const { requester, command } = asked;
  if (requester.kind === 'app') return { admitted: true };
  const entry = auditEntry(now, { ...asked, action: commandAction, allowed: true, reason: `${command}: within ${perMinute} commands a minute` });
  const outcome = await store.admitCommand({
    actor: requester.login,
    actions: [commandAction],
    since: new Date(now.getTime() - windowMs),
    limit: perMinute,
    entry,
    refusal: { ...entry, allowed: false, reason: `${command}: refused, past ${perMinute} commands a minute` },
  });
  if (outcome.admitted) return outcome;
  // Free again once fewer than `perMinute` entries are left in the window, this refusal
  // included: when the newest entry but `perMinute - 1` is a minute old.
  const lastToAge = perMinute === 1 ? now : (outcome.newest[perMinute - 2] ?? now);
  const until = new Date(Math.ceil((lastToAge.getTime() + windowMs + 1) / 1000) * 1000);
  return {
    admitted: false,
    silent: outcome.refused > 0,
    reason: `rate-limited until ${until.toISOString().slice(11, 19)} UTC: ${requester.login} gave ${outcome.count} commands in the last minute, and the limit is ${perMinute}.`,
  };
}
