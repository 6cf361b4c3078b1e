/**
 * A burst of `/run` webhooks against the real app (`bin/task-mgmt.js serve`) and the fake GitHub:
 * one pull request per webhook, spread over installations (one organization each), every one
 * running a task that fetches a few bytes from a local web server and adds them to the embedded
 * IPFS store (`ipfs/add-url`): the cheapest task that still goes through the real queue and worker.
 *
 * It reports what GitHub would judge: how long each webhook took to be answered (GitHub gives up
 * after 10 s), how many check runs each pull request got and how often each was written, and how
 * closely the app's writes to GitHub followed each other per installation (Octokit's throttling
 * spaces them a second apart per installation, as GitHub's secondary rate limits ask). Shared by
 * the load test and the webhook-burst benchmark; everything it starts listens on 127.0.0.1.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeGitHub, type CheckRunRecord, type Repo } from '../fake-github/index.js';
import { startApp, type AppProcess } from './app-process.js';

export interface BurstOptions {
  webhooks: number;
  installations: number;
  /** Extra environment for the app: the queue and store to use (QUEUE_URL, DATABASE_URL, …). */
  env?: Record<string, string>;
  /** How long to wait for every run to end, from the first webhook sent. */
  drainTimeoutMs: number;
  /** Called with short progress lines. */
  progress?: (line: string) => void;
}

export interface BurstResult {
  /** Milliseconds each webhook took to be answered, in the order they were sent. */
  answerMs: number[];
  /** HTTP status of each answer (0: no answer within GitHub's 10 s). */
  statuses: number[];
  /**
   * From the first webhook sent until the check run of every pull request whose webhook was
   * answered 2xx was completed (null: not all were within the time given).
   */
  drainMs: number | null;
  /** Check runs per pull request. */
  checkRunsPerPull: number[];
  /** Conclusions of the check runs, counted. */
  conclusions: Record<string, number>;
  /** Bodies the app sent per check run (its creation and each update). */
  writesPerCheckRun: number[];
  /**
   * Per installation: the shortest time between the arrivals of two of the app's writes to GitHub,
   * the first write left out (null: fewer than three). Octokit spaces writes when it schedules
   * them, and the first one then waits for the installation's token before it leaves: its arrival
   * is late by that exchange, which the next write does not pay.
   */
  shortestWriteGapMs: (number | null)[];
  /** Pairs of one installation's writes that arrived less than 900 ms apart: `gap ms: first → second`. */
  closeWrites: string[];
  /** The most writes one installation's repositories received within any 10 seconds. */
  busiestTenSeconds: number;
  /** The most writes any one installation received. */
  writesPerInstallationMax: number;
  /** The app's writes to GitHub (POST, PATCH, PUT, DELETE with an installation token), all installations. */
  writes: number;
  /** GitHub requests the fake does not serve, and OpenAPI violations: both must be empty. */
  unhandled: string[];
  openapiViolations: string[];
  /** The app's log, for failure messages. */
  appOutput: string;
}

export async function webhookBurst(options: BurstOptions): Promise<BurstResult> {
  const say = options.progress ?? (() => undefined);
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const gh = await FakeGitHub.start();
    cleanups.push(() => gh.close());
    const files = await smallFileServer();
    cleanups.push(() => files.close());
    // Opening pull requests delivers pull_request.opened; that goes to a sink until the app is up.
    const sink = await smallFileServer();
    cleanups.push(() => sink.close());
    gh.setWebhookTarget(sink.url);

    const manifest = `version: 1\ntasks:\n  fetch:\n    uses: ipfs/add-url\n    with: { url: "${files.url}" }\n`;
    const owners: string[] = [];
    const repos: Repo[] = [];
    for (let i = 0; i < options.installations; i += 1) {
      const owner = `load-org-${i}-${randomUUID().slice(0, 6)}`;
      gh.addInstallation(owner);
      owners.push(owner);
      const repo = await gh.createRepo({ owner, name: 'burst', files: { 'task-mgmt.yml': manifest } });
      gh.setRole(repo, 'alice', 'write');
      repos.push(repo);
    }
    // Pull request k lives in repository k mod installations; each has a head commit of its own.
    const pulls: { repo: Repo; number: number; head: string }[] = new Array(options.webhooks);
    // A few repositories at a time: each pull request costs git commands, and a busy machine
    // answered the fake's own pull_request deliveries too late when all ran at once.
    const SETUP_PARALLEL = 5;
    await Promise.all(
      Array.from({ length: Math.min(SETUP_PARALLEL, repos.length) }, async (_x, lane) => {
        for (let r = lane; r < repos.length; r += SETUP_PARALLEL) await openPulls(repos[r]!, r);
      }),
    );
    async function openPulls(repo: Repo, r: number): Promise<void> {
      for (let k = r; k < options.webhooks; k += repos.length) {
        const branch = `change-${k}`;
        const head = await gh.commit(repo, branch, {}, `change ${k}`);
        const { number } = await gh.openPullRequest(repo, { author: 'alice', head: branch });
        pulls[k] = { repo, number, head };
      }
    }
    say(`${options.webhooks} pull requests in ${repos.length} installations`);

    const app: AppProcess = await startApp(gh, { ALLOW_PRIVATE_ADDRESSES: 'true', COMMANDS_PER_MINUTE: '10000', ...options.env });
    cleanups.push(() => app.stop());
    const requestsBefore = gh.requests.length;

    const began = performance.now();
    const answers = await Promise.all(
      pulls.map(async ({ repo, number }) => {
        const sent = performance.now();
        try {
          const { delivery } = await gh.comment(repo, number, 'alice', '/run fetch');
          return { ms: performance.now() - sent, status: delivery.status };
        } catch {
          // The sender gives up after 10 s, as GitHub does.
          return { ms: performance.now() - sent, status: 0 };
        }
      }),
    );
    say(`webhooks answered; waiting for ${options.webhooks} runs`);

    const completed = (check: CheckRunRecord) => check.status === 'completed';
    const checksOf = (pull: (typeof pulls)[number]) => gh.checkRuns(pull.repo, { headSha: pull.head });
    let drainMs: number | null = null;
    try {
      // A webhook GitHub saw fail is not delivered again here: its run is never waited for (and the failure is in `statuses`).
      const accepted = pulls.filter((_pull, i) => answers[i]!.status >= 200 && answers[i]!.status < 300);
      await gh.waitFor(() => accepted.every((pull) => checksOf(pull).some(completed)), { timeoutMs: options.drainTimeoutMs, message: 'not every run ended' });
      drainMs = performance.now() - began;
    } catch {
      drainMs = null;
    }
    // A moment for anything that would come after the end (a second run, a late write) to show.
    await new Promise((resolve) => setTimeout(resolve, 1500));

    const checks = pulls.map(checksOf);
    const conclusions: Record<string, number> = {};
    for (const check of checks.flat()) {
      const key = check.conclusion ?? check.status;
      conclusions[key] = (conclusions[key] ?? 0) + 1;
    }
    const writes = gh.requests.slice(requestsBefore).filter((request) => request.method !== 'GET' && request.path.startsWith('/api/v3/repos/'));
    const closeWrites: string[] = [];
    let writesPerInstallationMax = 0;
    let busiestTenSeconds = 0;
    const shortestWriteGapMs = owners.map((owner) => {
      const mine = writes.filter((request) => request.path.split('/')[4]?.toLowerCase() === owner.toLowerCase()).sort((a, b) => a.startedAt - b.startedAt);
      writesPerInstallationMax = Math.max(writesPerInstallationMax, mine.length);
      for (let i = 0, j = 0; j < mine.length; j += 1) {
        while (mine[j]!.startedAt - mine[i]!.startedAt >= 10_000) i += 1;
        busiestTenSeconds = Math.max(busiestTenSeconds, j - i + 1);
      }
      let shortest: number | null = null;
      for (let i = 2; i < mine.length; i += 1) {
        const gap = mine[i]!.startedAt - mine[i - 1]!.startedAt;
        shortest = Math.min(shortest ?? Infinity, gap);
        if (gap < 900) closeWrites.push(`${gap.toFixed(0)} ms: ${mine[i - 1]!.method} ${mine[i - 1]!.path} → ${mine[i]!.method} ${mine[i]!.path}`);
      }
      return shortest;
    });
    return {
      answerMs: answers.map((answer) => answer.ms),
      statuses: answers.map((answer) => answer.status),
      drainMs,
      checkRunsPerPull: checks.map((list) => list.length),
      conclusions,
      writesPerCheckRun: checks.flat().map((check) => check.history.length),
      shortestWriteGapMs,
      closeWrites,
      busiestTenSeconds,
      writesPerInstallationMax,
      writes: writes.length,
      unhandled: gh.unhandled.map((request) => `${request.method} ${request.path}`),
      openapiViolations: gh.openapiViolations.map((violation) => `${violation.method} ${violation.path}: ${violation.error}`),
      appOutput: app.output(),
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }
}

/** The p-th percentile (0–100) by nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A server answering every request with the same few bytes (the task's download, and a webhook sink). */
async function smallFileServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end('hello burst\n'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/a.txt`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
