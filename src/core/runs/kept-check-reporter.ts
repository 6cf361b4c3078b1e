/**
 * A CheckReporter whose updates are not lost when GitHub does not take them: an update that fails
 * (after the client's own retries) is kept in the run store's outbox, the newest per run, and
 * `sendKept()` sends what is kept once GitHub answers again — also after a restart, since the
 * outbox is in the store. Updates of one run are sent one at a time in this process, so a kept
 * older update is never sent after a newer one went through.
 */
import type { Logger } from 'pino';
import type { CheckReport, CheckReporter, CheckTarget } from '../../ports/check-reporter.js';
import type { CheckOutbox, RunRecords } from '../../ports/run-store.js';
import type { RepoRef } from './run.js';

export interface KeptCheckReporterDeps {
  checks: CheckReporter;
  store: CheckOutbox & Pick<RunRecords, 'getRun'>;
  log: Pick<Logger, 'warn' | 'info'>;
  now: () => Date;
}

export class KeptCheckReporter implements CheckReporter {
  /** The last send of each run going on in this process: the next waits for it. */
  private readonly sending = new Map<string, Promise<unknown>>();

  constructor(private readonly deps: KeptCheckReporterDeps) {}

  create(target: CheckTarget, report: CheckReport): Promise<number> {
    return this.deps.checks.create(target, report);
  }

  async update(target: { repo: RepoRef; checkRunId: number | null; id?: string }, report: CheckReport): Promise<void> {
    const runId = target.id;
    if (runId === undefined) return this.deps.checks.update(target, report);
    await this.oneAtATime(runId, async () => {
      const at = this.deps.now();
      try {
        await this.deps.checks.update(target, report);
      } catch (error) {
        await this.deps.store.keepCheckUpdate(runId, report, at);
        this.deps.log.warn({ err: error, runId, status: report.status }, 'GitHub did not take a check-run update; it is kept and sent again later');
        return;
      }
      // Sent: an older update kept for the run is out of date now.
      await this.deps.store.dropCheckUpdate(runId, at);
    });
  }

  /** Sends the kept updates, oldest first; stops at the first GitHub does not take. Returns how many went. */
  async sendKept(limit = 100): Promise<number> {
    let sent = 0;
    for (const kept of await this.deps.store.listCheckUpdates(limit)) {
      const delivered = await this.oneAtATime(kept.runId, async () => {
        const run = await this.deps.store.getRun(kept.runId);
        if (!run || run.checkRunId === null) {
          await this.deps.store.dropCheckUpdate(kept.runId, kept.keptAt);
          return true;
        }
        try {
          await this.deps.checks.update(run, kept.report as CheckReport);
        } catch (error) {
          await this.deps.store.checkUpdateFailed(kept.runId);
          this.deps.log.warn({ err: error, runId: kept.runId, attempts: kept.attempts + 1 }, 'GitHub still does not take a kept check-run update');
          return false;
        }
        await this.deps.store.dropCheckUpdate(kept.runId, kept.keptAt);
        return true;
      });
      if (!delivered) break;
      sent += 1;
    }
    if (sent > 0) this.deps.log.info({ sent }, 'kept check-run updates sent to GitHub');
    return sent;
  }

  private async oneAtATime<T>(runId: string, work: () => Promise<T>): Promise<T> {
    const before = this.sending.get(runId) ?? Promise.resolve();
    const mine = before.catch(() => undefined).then(work);
    this.sending.set(runId, mine);
    try {
      return await mine;
    } finally {
      if (this.sending.get(runId) === mine) this.sending.delete(runId);
    }
  }
}
