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
  record: { request(status: number | string): void; rateLimit(remaining: number, limit: number | undefined): void },
): Octokit {
  const headroom = (headers: Record<string, unknown> | undefined) => {
    // Absent headers (GitHub Enterprise with rate limits off) leave the gauges as they were.
    const remaining = Number(headers?.['x-ratelimit-remaining'] ?? Number.NaN);
    const limit = Number(headers?.['x-ratelimit-limit'] ?? Number.NaN);
    if (Number.isFinite(remaining)) record.rateLimit(remaining, Number.isFinite(limit) ? limit : undefined);
  };
  octokit.hook.after('request', (response) => {
    record.request(response.status);
    headroom(response.headers);
  });
  octokit.hook.error('request', (error) => {
    record.request(httpStatus(error) ?? 'error');
    // A 403 or 429 for the rate limit carries the headers too: that is when the headroom is 0.
    headroom((error as { response?: { headers?: Record<string, unknown> } } | null)?.response?.headers);
    throw error;
  });
  return octokit;
}
