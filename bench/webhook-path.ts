/**
 * The webhook's critical path: how long after GitHub delivers a `/run` comment on a pull request
 * the app asks GitHub to create the queued check run, with every GitHub request taking 50 ms.
 * The case is the real app process (`bin/task-mgmt.js serve`, the compiled code `npm start` runs);
 * the baseline is a bare Probot app in this process that does the least any app must: read the
 * pull request for its head SHA, then create the check run. Both talk to the same fake GitHub
 * (test/fake-github/) over HTTP, with warm installation tokens. The fake's recorded requests also
 * tell which of the app's calls waited for one another: those are the rounds listed in the notes.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { Probot, createNodeMiddleware } from 'probot';
import { FakeGitHub, type RecordedRequest, type Repo } from '../test/fake-github/index.js';
import { preciseNow } from '../test/fake-github/http-server.js';
import { projectRoot, startApp, type AppProcess } from '../test/support/app-process.js';
import { ratio, type Benchmark, type BenchmarkResult } from './report.js';

/** The least time the fake GitHub takes to answer any request (its own work runs meanwhile). */
const LATENCY_MS = 50;
/** Uncounted webhooks per side first: the token exchange, and warm code on both sides. */
const WARM_UPS = 2;
const ITERATIONS = 15;
/** A webhook whose check run has not been asked for by then fails the benchmark. */
const CHECK_RUN_TIMEOUT_MS = 15_000;
/** Between webhooks: no request to the fake in flight or answered for this long, so one webhook's calls do not mix with the next's. */
const QUIET_MS = 400;
/** Octokit's throttling keeps writes at least a second apart; a little more, to be clear of it. */
const WRITE_SPACING_MS = 1100;
/** Longest wait for that quiet; an iteration that never got it is counted in the notes. */
const QUIET_CAP_MS = 10_000;
/** Bound on all iterations; the sides keep what they measured until then (`capped`). */
const CAP_MS = 180_000;

const OWNER = 'octo-org';
const CHECK_NAME = 'task-mgmt / default';
/** A task with no COPY: a pull request that does not touch it changes no task file. */
const DOCKERFILE = 'FROM busybox:latest\nCMD ["true"]\n';

interface Side {
  key: 'baseline' | 'task-mgmt';
  webhookUrl: string;
  /** Each side has its own repository, so a late call of one side is never counted for the other. */
  repo: Repo;
  samples: Sample[];
}

interface Sample {
  /** Delivery sent → check-run POST received, ms. */
  ms: number;
  /** The fake's own work beyond the injected latency, summed over the chain of calls the POST waited for, ms. */
  fakeMs: number;
  /** GitHub calls between the two (the token exchange left out), grouped into sequential rounds. */
  rounds: string[][];
  /** The app's own time: delivery sent → its first GitHub call, and its last answer → the POST, ms. */
  beforeFirstMs: number;
  afterLastMs: number;
}

/** The names that stand in for one iteration's values in the paths listed. */
interface Placeholders {
  repo: Repo;
  number: number;
  commenter: string;
  author: string;
  commentId: number;
}

export const webhookPath: Benchmark = {
  name: 'webhook-path',
  async run(): Promise<BenchmarkResult> {
    if (!existsSync(join(projectRoot, 'dist', 'src', 'main.js'))) {
      throw new Error('the app is not built: run `npm run build` first (`npm run bench` does)');
    }
    const gh = await FakeGitHub.start({ appSlug: 'task-mgmt', latencyMs: LATENCY_MS });
    let baseline: { webhookUrl: string; close(): Promise<void> } | undefined;
    let app: AppProcess | undefined;
    try {
      baseline = await startBaseline(gh);
      app = await startApp(gh, { WORKERS: '0' });
      const repoFor = (key: string) => gh.createRepo({ owner: OWNER, name: `webhook-path-${key}`, files: { Dockerfile: DOCKERFILE, 'README.md': `# ${key}\n` } });
      const sides: Side[] = [
        { key: 'baseline', webhookUrl: baseline.webhookUrl, repo: await repoFor('baseline'), samples: [] },
        { key: 'task-mgmt', webhookUrl: app.webhookUrl, repo: await repoFor('task-mgmt'), samples: [] },
      ];
      let notQuiet = 0;
      const began = performance.now();
      let capped = false;
      // Alternating, one webhook at a time: a busy moment of the machine hits both sides.
      for (let i = 0; i < WARM_UPS + ITERATIONS; i += 1) {
        if (performance.now() - began > CAP_MS) {
          capped = true;
          break;
        }
        for (const side of sides) {
          const warmUp = i < WARM_UPS;
          const { sample, quiet } = await oneWebhook(gh, side, warmUp ? `warm${i}` : String(i - WARM_UPS), app);
          if (!quiet) notQuiet += 1;
          if (!warmUp) side.samples.push(sample);
        }
      }
      return report(sides, { capped, notQuiet, unhandled: gh.unhandled, violations: gh.openapiViolations.length });
    } finally {
      await app?.stop();
      await baseline?.close();
      await gh.close();
    }
  },
};

/** One `/run` comment on a fresh pull request, timed from the fake's records. */
async function oneWebhook(gh: FakeGitHub, side: Side, label: string, app: AppProcess): Promise<{ sample: Sample; quiet: boolean }> {
  // A fresh pull request (and head commit), author and commenter every time: nothing about them
  // can be remembered from an earlier webhook. Both have write access, so no review is needed.
  const { repo } = side;
  const id = `${side.key}-${label}`;
  const commenter = `writer-${id}`;
  const author = `author-${id}`;
  gh.setRole(repo, commenter, 'write');
  gh.setRole(repo, author, 'write');
  const branch = `change-${label}`;
  await gh.commit(repo, branch, { [`docs/${label}.md`]: `a change that touches no task (${id})\n` });
  const headSha = gh.headOf(repo, branch);
  gh.setWebhookTarget(side.webhookUrl);
  const { number } = await gh.openPullRequest(repo, { author, head: branch });
  let quiet = await quietFake(gh);

  const from = gh.requests.length;
  const { delivery, commentId } = await gh.comment(repo, number, commenter, '/run');
  const sent = gh.deliveries.find((d) => d.deliveryId === delivery.deliveryId);
  if (delivery.status >= 300 || !sent) throw new Error(`${side.key} answered the webhook with ${delivery.status}: ${delivery.body.slice(0, 200)}`);
  const checkRunPath = `/api/v3/repos/${repo.fullName}/check-runs`;
  const replyPath = `/api/v3/repos/${repo.fullName}/issues/${number}/comments`;
  const failed = (why: string) => {
    const seen = gh.requests.slice(from).map((r) => `${r.method} ${r.path} ${r.status}`);
    return new Error(
      `${side.key} ${why}; GitHub calls since the webhook: ${seen.join(', ') || 'none'}` +
        (side.key === 'task-mgmt' ? `\napp log (end):\n${app.output().slice(-3000)}` : ''),
    );
  };
  // The check run, or a reply saying why nothing runs (then the setup here is wrong).
  const answer = await gh
    .waitFor(() => gh.requests.slice(from).find((r) => r.method === 'POST' && (r.path === checkRunPath || r.path === replyPath)), { timeoutMs: CHECK_RUN_TIMEOUT_MS })
    .catch(() => {
      throw failed(`did not create the check run within ${CHECK_RUN_TIMEOUT_MS / 1000} s of the webhook`);
    });
  if (answer.path === replyPath) throw failed(`replied instead of creating the check run: ${JSON.stringify(answer.body).slice(0, 300)}`);
  const post = answer;
  // Every call of this webhook (the reaction after the check run, too) ends before the next one.
  quiet = (await quietFake(gh)) && quiet;
  const body = post.body as { name?: string; status?: string; head_sha?: string } | undefined;
  if (post.status !== 201 || body?.name !== CHECK_NAME || body.status !== 'queued' || body.head_sha !== headSha) {
    throw new Error(`${side.key} created an unexpected check run (${post.status}): ${JSON.stringify(body).slice(0, 300)}`);
  }

  // Another repository's calls are the other side's (a late reaction, say), never this webhook's.
  const otherRepository = (r: RecordedRequest) => r.path.startsWith('/api/v3/repos/') && !inRepository(r.path.slice('/api/v3'.length), repo);
  const window = gh.requests
    .slice(from)
    .filter((r) => r.startedAt >= sent.startedAt && r.startedAt < post.startedAt && !isTokenExchange(r) && !otherRepository(r));
  const names: Placeholders = { repo, number, commenter, author, commentId };
  const rounds = sequentialRounds(window).map((round) => round.map((r) => describe(r, names)).sort());
  const firstStart = Math.min(...window.map((r) => r.startedAt), post.startedAt);
  const lastEnd = Math.max(...window.map((r) => r.endedAt ?? r.startedAt), sent.startedAt);
  return {
    sample: { ms: post.startedAt - sent.startedAt, fakeMs: fakeWorkOnPath(window, post.startedAt), rounds, beforeFirstMs: firstStart - sent.startedAt, afterLastMs: post.startedAt - lastEnd },
    quiet,
  };
}

/**
 * Groups requests into rounds: a request is one round after the latest round of any request that
 * ended before it started (it could have waited for that one's answer); requests that overlap are
 * parallel. The number of rounds is the longest chain of calls that could depend on one another.
 */
function sequentialRounds(requests: RecordedRequest[]): RecordedRequest[][] {
  const sorted = [...requests].sort((a, b) => a.startedAt - b.startedAt);
  const depth = new Map<RecordedRequest, number>();
  for (const request of sorted) {
    let before = 0;
    for (const earlier of sorted) {
      if (earlier === request) break;
      if (earlier.endedAt !== undefined && earlier.endedAt <= request.startedAt) before = Math.max(before, depth.get(earlier) ?? 0);
    }
    depth.set(request, before + 1);
  }
  const rounds: RecordedRequest[][] = [];
  for (const request of sorted) {
    const round = depth.get(request)! - 1;
    (rounds[round] ??= []).push(request);
  }
  return rounds;
}

/**
 * How much longer than the injected latency the fake itself took to answer the calls the POST
 * waited for: walking back from the POST, each step is the call that ended last before the
 * current one started. The fake reads repositories with the git CLI, and on a busy machine a
 * contents or files request can take hundreds of ms; that is the fake's cost, not GitHub's.
 */
function fakeWorkOnPath(requests: RecordedRequest[], until: number): number {
  let extra = 0;
  let cursor = until;
  for (;;) {
    let previous: RecordedRequest | undefined;
    for (const request of requests) {
      if (request.endedAt !== undefined && request.endedAt <= cursor && (!previous || request.endedAt > previous.endedAt!)) previous = request;
    }
    if (!previous) return extra;
    extra += Math.max(0, previous.endedAt! - previous.startedAt - LATENCY_MS);
    cursor = previous.startedAt;
  }
}

/** Whether an API path (without /api/v3) is about `repo`. */
function inRepository(path: string, repo: Repo): boolean {
  const prefix = `/repos/${repo.fullName}`.toLowerCase();
  const lower = path.toLowerCase();
  return lower === prefix || lower.startsWith(`${prefix}/`);
}

function isTokenExchange(request: RecordedRequest): boolean {
  return request.method === 'POST' && /^\/api\/v3\/app\/installations\/\d+\/access_tokens$/.test(request.path);
}

/** `GET /repos/{owner}/{repo}/pulls/{number}`: the call, with this iteration's values named. */
function describe(request: RecordedRequest, names: Placeholders): string {
  const replacements: Record<string, string> = {
    [names.commenter.toLowerCase()]: '{commenter}',
    [names.author.toLowerCase()]: '{author}',
    [String(names.number)]: '{number}',
    [String(names.commentId)]: '{comment_id}',
  };
  const name = (segment: string) => {
    const decoded = decodeURIComponent(segment);
    return replacements[decoded.toLowerCase()] ?? (/^[0-9a-f]{40}$/.test(decoded) ? '{sha}' : /^\d+$/.test(decoded) ? '{id}' : decoded);
  };
  const path = request.path.replace(/^\/api\/v3/, '');
  const repoPrefix = `/repos/${names.repo.fullName}`;
  const inRepo = inRepository(path, names.repo);
  const rest = (inRepo ? path.slice(repoPrefix.length) : path).split('/').map((segment) => (segment === '' ? '' : name(segment))).join('/');
  const shown = inRepo ? `/repos/{owner}/{repo}${rest}` : rest;
  const query = Object.entries(request.query).map(([key, value]) => `${key}=${/^[0-9a-f]{40}$/.test(value) ? '{sha}' : value}`);
  const status = request.status >= 200 && request.status < 300 ? '' : ` → ${request.status}`;
  return `${request.method} ${shown}${query.length > 0 ? `?${query.join('&')}` : ''}${status}`;
}

/**
 * Waits until no request to the fake is in flight, none ended for QUIET_MS, and no write (POST,
 * PATCH, PUT, DELETE) for WRITE_SPACING_MS; false if that never came. Octokit's throttling spaces
 * an installation's writes a second apart (GitHub's guidance for writes), so a webhook sent
 * sooner after the previous one's reaction would measure that spacing, not its own path.
 */
async function quietFake(gh: FakeGitHub): Promise<boolean> {
  const deadline = performance.now() + QUIET_CAP_MS;
  for (;;) {
    let last = 0;
    let lastWrite = 0;
    let inFlight = false;
    for (const request of gh.requests) {
      if (request.endedAt === undefined) inFlight = true;
      else last = Math.max(last, request.endedAt);
      if (request.method !== 'GET' && request.method !== 'HEAD') lastWrite = Math.max(lastWrite, request.startedAt);
    }
    const now = preciseNow();
    if (!inFlight && now - last >= QUIET_MS && now - lastWrite >= WRITE_SPACING_MS) return true;
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * The least an app must do for the same check run: read the pull request (the comment's payload
 * has no head SHA), then create the check run. Probot, in this process, on 127.0.0.1.
 */
async function startBaseline(gh: FakeGitHub): Promise<{ webhookUrl: string; close(): Promise<void> }> {
  const probot = new Probot({
    appId: gh.appId,
    privateKey: gh.privateKey,
    secret: gh.webhookSecret,
    baseUrl: `${gh.url}/api/v3`,
    log: pino({ level: 'silent' }),
  });
  const middleware = await createNodeMiddleware(
    (app) => {
      app.on('issue_comment.created', async (context) => {
        const { issue, comment } = context.payload;
        if (!issue.pull_request || comment.body.trim() !== '/run') return;
        const pull = await context.octokit.rest.pulls.get(context.repo({ pull_number: issue.number }));
        await context.octokit.rest.checks.create(context.repo({ name: CHECK_NAME, head_sha: pull.data.head.sha, status: 'queued' as const }));
      });
    },
    { probot },
  );
  const server: Server = createServer((req, res) => {
    void middleware(req, res, () => {
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    webhookUrl: `http://127.0.0.1:${port}/api/github/webhooks`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function report(
  sides: Side[],
  run: { capped: boolean; notQuiet: number; unhandled: RecordedRequest[]; violations: number },
): BenchmarkResult {
  const stats = (side: Side) => {
    const ms = side.samples.map((s) => s.ms).sort((a, b) => a - b);
    const net = side.samples.map((s) => s.ms - s.fakeMs).sort((a, b) => a - b);
    return {
      side,
      median: quantile(ms, 0.5),
      p90: quantile(ms, 0.9),
      netMedian: quantile(net, 0.5),
      netP90: quantile(net, 0.9),
      common: mostCommonRounds(side.samples),
    };
  };
  const [b, a] = sides.map(stats) as [ReturnType<typeof stats>, ReturnType<typeof stats>];
  // Latency: case ÷ baseline, lower is better. report.ts's ratios are throughput ratios (higher
  // is better), so the ratios handed to the summary are the inverse: its "x slower" is this one.
  const slower = (x: number | null, y: number | null) => (x === null || y === null || y === 0 ? null : x / y);
  const row = (label: string, s: ReturnType<typeof stats>) => ({
    case: label,
    webhooks: run.capped ? `${s.side.samples.length} (capped)` : s.side.samples.length,
    median: s.median,
    p90: s.p90,
    ratio: slower(s.median, b.median),
    netMedian: s.netMedian,
    netP90: s.netP90,
    netRatio: slower(s.netMedian, b.netMedian),
    rounds: s.common ? s.common.rounds.length : null,
    calls: s.common ? s.common.rounds.flat().length : null,
  });
  const notes = [
    `Each side: ${ITERATIONS} webhooks after ${WARM_UPS} uncounted warm-ups, alternating sides, one at a time. The fake GitHub answers no request sooner than ${LATENCY_MS} ms after it arrived.`,
    'ms = from sending the signed issue_comment.created webhook (`/run`) until the fake receives POST /repos/{owner}/{repo}/check-runs (`task-mgmt / default`, queued). p90 is the nearest rank.',
    `net ms = ms less the time beyond ${LATENCY_MS} ms the fake took to answer the chain of calls the POST waited for: the time had GitHub answered each of those calls in ${LATENCY_MS} ms. The fake reads repositories with the git CLI, so on a busy machine its contents and files answers can take far longer.`,
    'ratio = ms ÷ the baseline\'s ms, medians: LOWER is better (1 = as fast as the baseline). The summary lists the inverse (baseline ÷ task-mgmt), as for the throughput ratios, so its "x slower" is this ratio.',
    'Each side has a repository (octo-org, a root Dockerfile with no COPY). Each webhook: a fresh pull request by a fresh writer adding a file under docs/, `/run` from another fresh writer: no review needed, and nothing about the pull request, its head or the people known from an earlier webhook.',
    'baseline: a bare Probot app in this process (GET the pull request, then POST the check run). task-mgmt: `bin/task-mgmt.js serve` as a child process (WORKERS=0, embedded queue, SQLite in a temp folder).',
    ...sides.map((side) => {
      const median = (pick: (s: Sample) => number) => quantile(side.samples.map(pick).sort((x, y) => x - y), 0.5)?.toFixed(1) ?? '?';
      return `${side.key}: its own time, medians: ${median((s) => s.beforeFirstMs)} ms from the delivery to its first GitHub call, ${median((s) => s.afterLastMs)} ms from its last answer to the POST.`;
    }),
    `rounds = sequential GitHub calls before the check-run POST: a call is one round after every call that ended before it started; calls that overlap share a round. The token exchange is left out. Each round costs at least ${LATENCY_MS} ms.`,
  ];
  for (const s of [b, a]) {
    if (!s.common) continue;
    const { rounds, count } = s.common;
    notes.push(`${s.side.key}: ${rounds.length} round(s), ${rounds.flat().length} call(s) before the check-run POST, in ${count} of ${s.side.samples.length} webhooks:`);
    rounds.forEach((round, i) => notes.push(`  ${s.side.key} round ${i + 1}: ${round.join('  ‖  ')}`));
    const others = new Map<string, { rounds: string[][]; times: number }>();
    for (const sample of s.side.samples) {
      const key = signature(sample.rounds);
      if (key === s.common.signature) continue;
      const other = others.get(key) ?? { rounds: sample.rounds, times: 0 };
      other.times += 1;
      others.set(key, other);
    }
    for (const other of others.values()) {
      notes.push(`  ${s.side.key}, ${other.times} other webhook(s), ${other.rounds.length} round(s): ${other.rounds.map((round, i) => `(${i + 1}) ${round.join(' ‖ ')}`).join(' ')}`);
    }
  }
  if (run.capped) notes.push(`The run hit the ${CAP_MS / 1000} s cap; each side reports the webhooks it finished.`);
  if (run.notQuiet > 0) notes.push(`${run.notQuiet} time(s) GitHub calls had not stopped ${QUIET_CAP_MS / 1000} s after a webhook: a neighbouring webhook's rounds may hold stray calls.`);
  if (run.unhandled.length > 0) notes.push(`The fake GitHub does not serve ${run.unhandled.length} request(s) made, e.g. ${run.unhandled.slice(0, 3).map((r) => `${r.method} ${r.path}`).join(', ')}.`);
  if (run.violations > 0) notes.push(`${run.violations} request(s) broke GitHub's OpenAPI description.`);
  return {
    name: 'webhook-path',
    title: `Webhook critical path: /run delivered → check-run POST at GitHub, ${LATENCY_MS} ms per GitHub request (ms: lower is better)`,
    columns: [
      { key: 'case', header: 'case', align: 'left' },
      { key: 'webhooks', header: 'webhooks' },
      { key: 'median', header: 'median ms', digits: 1 },
      { key: 'p90', header: 'p90 ms', digits: 1 },
      { key: 'ratio', header: 'ratio (lower is better)', digits: 2 },
      { key: 'netMedian', header: 'net median ms', digits: 1 },
      { key: 'netP90', header: 'net p90 ms', digits: 1 },
      { key: 'netRatio', header: 'net ratio', digits: 2 },
      { key: 'rounds', header: 'rounds' },
      { key: 'calls', header: 'calls' },
    ],
    rows: [row('baseline: bare Probot, GET pull + POST check run', b), row('task-mgmt serve', a)],
    ratios: [
      { case: 'task-mgmt /run → check run (baseline ms ÷ task-mgmt ms)', ratio: ratio(b.median, a.median) },
      { case: `task-mgmt, net of the fake's work (GitHub at ${LATENCY_MS} ms a call)`, ratio: ratio(b.netMedian, a.netMedian) },
    ],
    notes,
  };
}

function signature(rounds: string[][]): string {
  return rounds.map((round) => round.join(' + ')).join(' | ');
}

/** The sequence of rounds most webhooks of a side showed, and in how many. */
function mostCommonRounds(samples: Sample[]): { rounds: string[][]; signature: string; count: number } | null {
  const counts = new Map<string, { rounds: string[][]; count: number }>();
  for (const sample of samples) {
    const key = signature(sample.rounds);
    const entry = counts.get(key) ?? { rounds: sample.rounds, count: 0 };
    entry.count += 1;
    counts.set(key, entry);
  }
  let best: { rounds: string[][]; signature: string; count: number } | null = null;
  for (const [key, entry] of counts) if (!best || entry.count > best.count) best = { ...entry, signature: key };
  return best;
}

/** Nearest-rank quantile of sorted values. */
function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
