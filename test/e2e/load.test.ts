/**
 * A burst of 100 `/run` webhooks, one per pull request, over 10 installations, against the real
 * app (embedded queue and store) and the fake GitHub: every webhook is answered within GitHub's
 * 10 seconds, each pull request gets exactly one run, every run ends, and the app's writes to
 * GitHub keep Octokit's spacing per installation. Timings are reported, never asserted beyond
 * GitHub's own limit: `npm run bench webhook-burst` measures them (500 webhooks, two queues).
 */
import { describe, expect, it } from 'vitest';
import { percentile, webhookBurst } from '../support/webhook-burst.js';

const WEBHOOKS = 100;
const INSTALLATIONS = 10;
/** GitHub closes a delivery's connection after 10 s and counts it failed. */
const GITHUB_TIMEOUT_MS = 10_000;

describe('a burst of /run webhooks', () => {
  it(`answers ${WEBHOOKS} webhooks over ${INSTALLATIONS} installations in time and runs each once`, { timeout: 240_000 }, async () => {
    const result = await webhookBurst({ webhooks: WEBHOOKS, installations: INSTALLATIONS, drainTimeoutMs: 180_000, env: { WORKERS: '4' } });
    const tail = `\napp log:\n${result.appOutput.slice(-3000)}`;
    console.log(
      `load: ${WEBHOOKS} webhooks over ${INSTALLATIONS} installations; answered p50 ${percentile(result.answerMs, 50).toFixed(0)} ms, ` +
        `p99 ${percentile(result.answerMs, 99).toFixed(0)} ms; drained in ${result.drainMs === null ? 'never' : `${(result.drainMs / 1000).toFixed(1)} s`}; ` +
        `${result.writes} writes to GitHub`,
    );

    expect(result.statuses.filter((status) => status < 200 || status >= 300), `webhooks not answered 2xx${tail}`).toEqual([]);
    expect(Math.max(...result.answerMs), 'slowest answer (ms)').toBeLessThan(GITHUB_TIMEOUT_MS);
    expect(result.drainMs, `not every run ended${tail}`).not.toBeNull();
    // Exactly one run per pull request, each ended successfully.
    expect(result.checkRunsPerPull.filter((count) => count !== 1), 'pull requests without exactly one check run').toEqual([]);
    expect(result.conclusions).toEqual({ success: WEBHOOKS });
    // Each check run is created once and updated a bounded number of times (running, then done).
    expect(Math.max(...result.writesPerCheckRun)).toBeLessThanOrEqual(3);
    // GitHub asks for about a write a second per installation, and Octokit schedules them so. What
    // arrives is checked over 10 s windows: writes scheduled while an installation's first token is
    // being fetched leave together once it comes (on a busy machine, seconds later), so single gaps
    // can be short; without the throttle, an installation's 40 writes would come within a second or two.
    expect(result.busiestTenSeconds, `most writes of one installation within 10 s; close pairs:\n${result.closeWrites.join('\n')}`).toBeLessThanOrEqual(14);
    expect(result.writes).toBeLessThanOrEqual(WEBHOOKS * 4);
    expect(result.unhandled).toEqual([]);
    expect(result.openapiViolations).toEqual([]);
  });
});
