/** CheckReporter as GitHub check runs on the run's pinned SHA. */
import type { CheckReport, CheckReporter, CheckTarget } from '../../ports/check-reporter.js';
import { checkRunName, truncateEnd, truncateStart } from '../../core/runs/check-text.js';
import type { RepoRef } from '../../core/runs/run.js';
import type { OctokitForInstallation } from './octokit.js';
import type { Redact } from './redact-secrets.js';

export class GithubCheckReporter implements CheckReporter {
  constructor(
    private readonly deps: {
      octokitFor: OctokitForInstallation;
      /** Base URL of the dashboard, for details_url; checks carry none without it. */
      publicUrl?: string | undefined;
      now?: () => Date;
      /** Applied to every text of a check run: logs reach it, and check runs are public. */
      redact?: Redact;
    },
  ) {}

  async create(target: CheckTarget, report: CheckReport): Promise<number> {
    const octokit = await this.deps.octokitFor(target.repo.installationId);
    const response = await octokit.rest.checks.create({
      owner: target.repo.owner,
      repo: target.repo.name,
      name: checkRunName(target),
      head_sha: target.sha,
      ...(target.id ? { external_id: target.id } : {}),
      ...this.detailsUrl(target.id),
      ...this.body(report),
    });
    return response.data.id;
  }

  async update(target: { repo: RepoRef; checkRunId: number | null; id?: string }, report: CheckReport): Promise<void> {
    if (target.checkRunId === null) throw new Error(`run ${target.id ?? '?'} has no check run to update`);
    const octokit = await this.deps.octokitFor(target.repo.installationId);
    await octokit.rest.checks.update({
      owner: target.repo.owner,
      repo: target.repo.name,
      check_run_id: target.checkRunId,
      ...this.body(report),
    });
  }

  private detailsUrl(runId: string | undefined): { details_url?: string } {
    return this.deps.publicUrl && runId ? { details_url: `${this.deps.publicUrl}/runs/${encodeURIComponent(runId)}` } : {};
  }

  private body(report: CheckReport) {
    const now = (this.deps.now ?? (() => new Date()))().toISOString();
    // Redacted before any cut, so that no secret is cut into a piece the redactor misses.
    const redact = this.deps.redact ?? ((text: string) => text);
    // GitHub takes at most 50 annotations per request.
    const annotations = (report.annotations ?? []).slice(0, 50).map((a) => ({
      path: a.path,
      start_line: a.line,
      end_line: a.line,
      annotation_level: 'failure' as const,
      title: redact(a.title).slice(0, 255),
      message: redact(a.message).slice(0, 64 * 1024),
    }));
    const output = {
      title: redact(report.title),
      // GitHub rejects a summary or text over 65,535 characters; cut them as check-text.ts does.
      summary: truncateEnd(redact(report.summary)),
      ...(report.text ? { text: truncateStart(redact(report.text)) } : {}),
      ...(annotations.length > 0 ? { annotations } : {}),
    };
    const actions = report.actions ? { actions: report.actions } : {};
    if (report.status === 'completed') {
      return { status: 'completed' as const, conclusion: report.conclusion ?? 'neutral', completed_at: now, output, ...actions };
    }
    if (report.status === 'in_progress') return { status: 'in_progress' as const, started_at: now, output, ...actions };
    return { status: 'queued' as const, output, ...actions };
  }
}
