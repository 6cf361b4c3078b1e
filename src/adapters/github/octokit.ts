/** The Octokit type the GitHub adapters take, and how they obtain one per installation. */
import type { ProbotOctokit } from 'probot';

export type Octokit = InstanceType<typeof ProbotOctokit>;

/** Returns an Octokit authenticated as the App's installation (tokens refresh by themselves). */
export type OctokitForInstallation = (installationId: number) => Promise<Octokit>;

/** GitHub's answer as an HTTP status, when the error carries one. */
export function httpStatus(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

/** Counts each GitHub request by status and keeps the rate-limit headroom GitHub reports, for /metrics. */
export function instrumentOctokit(
  octokit: Octokit,
  record: { request(status: number | string): void; rateLimitRemaining(remaining: number): void },
): Octokit {
  octokit.hook.after('request', (response) => {
    record.request(response.status);
    const remaining = Number(response.headers['x-ratelimit-remaining']);
    if (Number.isFinite(remaining)) record.rateLimitRemaining(remaining);
  });
  octokit.hook.error('request', (error) => {
    record.request(httpStatus(error) ?? 'error');
    throw error;
  });
  return octokit;
}
