/**
 * The Octokit class every Probot of the app uses: Probot's own, with its throttling and retry
 * plugins told what to do. Probot 14 retries a primary rate limit twice and only logs a
 * secondary one (the request then fails), so a burst of check-run writes lost updates;
 * https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api asks
 * to wait for `retry-after` (or a minute) and try again. Server errors (5xx) are retried by
 * @octokit/plugin-retry with growing pauses. What still fails after that reaches the caller,
 * which turns it into a RetryableError or keeps the update for later.
 */
import type { Logger } from 'pino';
import { ProbotOctokit } from 'probot';

export interface GithubRetryOptions {
  /** Longest wait for a rate limit that is still retried in place; a longer one fails the request. Default 60 s. */
  maxRateLimitWaitMs?: number;
  /** Tries of a request that hit a secondary rate limit. Default 5. */
  secondaryRateLimitRetries?: number;
  /** Retries of a request GitHub answered with a server error (5xx). Default 3 (after 1, 4 and 9 s). */
  serverErrorRetries?: number;
}

interface ThrottledRequest {
  method: string;
  url: string;
  request: { retryCount: number };
}

export function githubOctokit(log: Pick<Logger, 'warn'>, options: GithubRetryOptions = {}): typeof ProbotOctokit {
  const maxWaitS = (options.maxRateLimitWaitMs ?? 60_000) / 1000;
  const secondaryRetries = options.secondaryRateLimitRetries ?? 5;
  const retries = options.serverErrorRetries ?? 3;
  // A function, not an object: Probot passes its own throttle options on every construction, and
  // a function of ours sees them last and replaces their handlers.
  return ProbotOctokit.defaults((instance: Record<string, unknown>) => ({
    ...instance,
    throttle: {
      ...(instance.throttle as object | undefined),
      enabled: true,
      onRateLimit: (retryAfter: number, request: ThrottledRequest) => {
        const retry = request.request.retryCount < 2 && retryAfter <= maxWaitS;
        log.warn({ request: `${request.method} ${request.url}`, retryAfterS: retryAfter, retry }, 'GitHub rate limit reached');
        return retry;
      },
      onSecondaryRateLimit: (retryAfter: number, request: ThrottledRequest) => {
        const retry = request.request.retryCount < secondaryRetries && retryAfter <= maxWaitS;
        log.warn({ request: `${request.method} ${request.url}`, retryAfterS: retryAfter, retry }, 'GitHub secondary rate limit reached');
        return retry;
      },
    },
    retry: { ...(instance.retry as object | undefined), retries },
  })) as typeof ProbotOctokit;
}
