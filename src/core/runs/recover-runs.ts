/**
 * A run never stays `running` when its worker is gone: a worker renews its lease every third of
 * the lease time, so a lease that ran out means the worker died (SIGKILL, a lost machine). Such a
 * run goes back to the queue, and its check run says so; after `maxRecoveries` it fails instead,
 * so a task that kills its worker every time cannot loop for ever.
 */
import type { Logger } from 'pino';
import type { CheckReporter } from '../../ports/check-reporter.js';
import type { RunQueue } from '../../ports/run-queue.js';
import type { AuditLog, RunLeases, RunRecords } from '../../ports/run-store.js';
import { finishedReport, queuedReport } from './check-text.js';

export interface RecoverDeps {
  store: RunRecords & RunLeases & AuditLog;
  queue: RunQueue;
  checks: CheckReporter;
  log: Logger;
  now: () => Date;
  gatewayUrl: string;
  maxRecoveries?: number;
}

export async function recoverAbandonedRuns(deps: RecoverDeps): Promise<{ requeued: string[]; failed: string[] }> {
  const requeued: string[] = [];
  const failed: string[] = [];
  const max = deps.maxRecoveries ?? 3;
  for (const run of await deps.store.listExpiredLeases(deps.now())) {
    const recoveries = await deps.store.countAudit({ actor: `run:${run.id}`, actions: ['recover'], since: new Date(0) });
    // Only while the lost worker still holds it: a run queued again and taken since is not touched.
    const held = run.workerId !== null ? { heldBy: run.workerId } : {};
    const reason = `its worker${run.workerId ? ` (${run.workerId})` : ''} stopped renewing its lease`;
    if (recoveries >= max) {
      const ended = await deps.store.transition(run.id, 'abandon', deps.now(), { error: `${reason} ${recoveries + 1} times; not retried again` }, held);
      if (!ended) continue;
      failed.push(run.id);
      await deps.checks.update(ended, finishedReport(ended, deps.gatewayUrl)).catch((error: unknown) => deps.log.warn({ err: error }, 'could not report'));
      continue;
    }
    const back = await deps.store.transition(run.id, 'requeue', deps.now(), { workerId: null, leaseUntil: null }, held);
    if (!back) continue;
    await deps.store.audit({
      at: deps.now(),
      repo: `${run.repo.owner}/${run.repo.name}`,
      number: run.number,
      actor: `run:${run.id}`,
      action: 'recover',
      allowed: true,
      reason: `${reason}; queued again`,
      runId: run.id,
    });
    await deps.queue.enqueue({ runId: run.id });
    requeued.push(run.id);
    deps.log.warn({ runId: run.id, workerId: run.workerId }, 'run of a lost worker queued again');
    const report = queuedReport(back);
    await deps.checks
      .update(back, { ...report, summary: `${report.summary}\n\nQueued again: ${reason}.` })
      .catch((error: unknown) => deps.log.warn({ err: error }, 'could not report'));
  }
  return { requeued, failed };
}
