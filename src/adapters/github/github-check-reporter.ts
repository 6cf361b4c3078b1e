/** CheckReporter as GitHub check runs on the run's pinned SHA. */
import type { CheckReport, CheckReporter } from '../../ports/check-reporter.js';
import { checkRunName } from '../../core/runs/check-text.js';
import type { Run } from '../../core/runs/run.js';
import type { OctokitForInstallation } from './octokit.js';

export class GithubCheckReporter implements CheckReporter {
  constructor(
    private readonly deps: {
      octokitFor: OctokitForInstallation;
      /** Base URL of the dashboard, for details_url; checks carry none without it. */
      publicUrl?: string | undefined;
      now?: () => Date;
    },
  ) {}

  async create(run: Run, report: CheckReport): Promise<number> {
    const octokit = await this.deps.octokitFor(run.repo.installationId);
    const response = await octokit.rest.checks.create({
      owner: run.repo.owner,
      repo: run.repo.name,
      name: checkRunName(run),
      head_sha: run.sha,
      external_id: run.id,
      ...this.detailsUrl(run),
      ...this.body(report),
    });
    return response.data.id;
  }

  async update(run: Run, report: CheckReport): Promise<void> {
    if (run.checkRunId === null) throw new Error(`run ${run.id} has no check run to update`);
    const octokit = await this.deps.octokitFor(run.repo.installationId);
    await octokit.rest.checks.update({
      owner: run.repo.owner,
      repo: run.repo.name,
      check_run_id: run.checkRunId,
      ...this.body(report),
    });
  }

  private detailsUrl(run: Run): { details_url?: string } {
    return this.deps.publicUrl ? { details_url: `${this.deps.publicUrl}/runs/${encodeURIComponent(run.id)}` } : {};
  }

  private body(report: CheckReport) {
    const now = (this.deps.now ?? (() => new Date()))().toISOString();
    const output = { title: report.title, summary: report.summary, ...(report.text ? { text: report.text } : {}) };
    if (report.status === 'completed') {
      return { status: 'completed' as const, conclusion: report.conclusion ?? 'neutral', completed_at: now, output };
    }
    if (report.status === 'in_progress') return { status: 'in_progress' as const, started_at: now, output };
    return { status: 'queued' as const, output };
  }
}
