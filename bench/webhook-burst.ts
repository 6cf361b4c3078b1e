/**
 * A burst of `/run` webhooks, one per pull request, spread over installations, against the real
 * app (`bin/task-mgmt.js serve`) and the fake GitHub (test/support/webhook-burst.ts), once with the
 * embedded queue and store and once with BullMQ (Redis) and PostgreSQL. Each run is a tiny
 * `ipfs/add-url` task, so the drain is bound by GitHub's rate: Octokit spaces an installation's
 * writes a second apart, and every run writes a few times. The baseline is that floor, computed
 * from the writes the fake received: (most writes of one installation − 1) seconds. The ratio is
 * floor ÷ drain time (1 = the app keeps up with GitHub's rate, lower = it lags behind it).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createTestDatabase, type TestDatabase } from '../test/support/postgres.js';
import { serviceAvailable } from '../test/support/services.js';
import { projectRoot } from '../test/support/app-process.js';
import { percentile, webhookBurst, type BurstResult } from '../test/support/webhook-burst.js';
import { type Benchmark, type BenchmarkResult, type Cell } from './report.js';

const WEBHOOKS = Number(process.env.BENCH_BURST_WEBHOOKS ?? 500);
const INSTALLATIONS = Number(process.env.BENCH_BURST_INSTALLATIONS ?? 25);
/** Runs taken at once by the app's worker. */
const WORKERS = '8';
/** Bound on each case's drain; a case that hits it says so. */
const DRAIN_CAP_MS = 300_000;

interface Case {
  name: string;
  result: BurstResult | null;
  skipped?: string;
}

export const webhookBurstBenchmark: Benchmark = {
  name: 'webhook-burst',
  async run(): Promise<BenchmarkResult> {
    if (!existsSync(join(projectRoot, 'dist', 'src', 'main.js'))) throw new Error('webhook-burst starts the compiled app: run `npm run build` first');
    const notes: string[] = [];
    const cases: Case[] = [];
    const burst = (env: Record<string, string>) =>
      webhookBurst({ webhooks: WEBHOOKS, installations: INSTALLATIONS, drainTimeoutMs: DRAIN_CAP_MS, env: { WORKERS, ...env }, progress: (line) => console.log(`  ${line}`) });

    console.log('  embedded queue and store');
    cases.push({ name: 'embedded queue + SQLite', result: await burst({}) });

    if ((await serviceAvailable('redis')) && (await serviceAvailable('postgres'))) {
      console.log('  BullMQ and PostgreSQL');
      let database: TestDatabase | undefined;
      const prefix = `task-mgmt-bench-${randomUUID()}`;
      try {
        database = await createTestDatabase();
        cases.push({
          name: 'BullMQ + PostgreSQL',
          result: await burst({ QUEUE_URL: 'redis://127.0.0.1:6379', QUEUE_PREFIX: prefix, DATABASE_URL: database.url }),
        });
      } finally {
        await database?.drop().catch(() => undefined);
        await deleteRedisKeys(prefix).catch(() => undefined);
      }
    } else {
      cases.push({ name: 'BullMQ + PostgreSQL', result: null, skipped: 'Redis or PostgreSQL did not answer' });
    }

    const measured = cases.map((c) => {
      const r = c.result;
      if (!r) return { c, floorS: null, ratio: null };
      const floorS = Math.max(0, r.writesPerInstallationMax - 1);
      return { c, floorS, ratio: r.drainMs === null ? null : floorS / (r.drainMs / 1000) };
    });
    const rows = measured.map(({ c, floorS, ratio }): Record<string, Cell> => {
      const r = c.result;
      if (!r) return { case: `${c.name} (skipped: ${c.skipped})`, answered: null, p50: null, p99: null, max: null, runs: null, drain: null, floor: null, ratio: null };
      const ok = r.statuses.filter((status) => status >= 200 && status < 300).length;
      return {
        case: c.name,
        answered: `${ok}/${r.statuses.length}`,
        p50: percentile(r.answerMs, 50),
        p99: percentile(r.answerMs, 99),
        max: Math.max(...r.answerMs),
        runs: `${r.conclusions.success ?? 0} ok, ${r.checkRunsPerPull.filter((n) => n !== 1).length} not once`,
        drain: r.drainMs === null ? 'capped' : r.drainMs / 1000,
        floor: floorS,
        ratio,
      };
    });
    for (const { c } of measured) {
      const r = c.result;
      if (!r) continue;
      const perRun = r.writesPerCheckRun.length > 0 ? Math.max(...r.writesPerCheckRun) : 0;
      notes.push(
        `${c.name}: ${r.writes} writes to GitHub (${(r.writes / WEBHOOKS).toFixed(1)} per run; check runs written at most ${perRun} times each), ` +
          `shortest gap between an installation's writes ${Math.min(...r.shortestWriteGapMs.map((gap) => gap ?? Infinity)).toFixed(0)} ms, most in 10 s ${r.busiestTenSeconds}` +
          (r.unhandled.length + r.openapiViolations.length > 0 ? `; ${r.unhandled.length} unhandled requests, ${r.openapiViolations.length} OpenAPI violations` : ''),
      );
    }
    notes.push(
      `${WEBHOOKS} webhooks sent at once, one per pull request, over ${INSTALLATIONS} installations; WORKERS=${WORKERS}. Answer times in ms as the sender saw them (GitHub gives up at 10,000). ` +
        'drain = first webhook sent → every check run completed, in s; floor = (most writes of one installation − 1) s, the least time Octokit\'s one write a second per installation allows.',
    );
    return {
      name: this.name,
      title: `Webhook burst: ${WEBHOOKS} /run webhooks over ${INSTALLATIONS} installations, answered, then drained`,
      columns: [
        { key: 'case', header: 'case', align: 'left' },
        { key: 'answered', header: 'answered 2xx' },
        { key: 'p50', header: 'p50 ms', digits: 0 },
        { key: 'p99', header: 'p99 ms', digits: 0 },
        { key: 'max', header: 'max ms', digits: 0 },
        { key: 'runs', header: 'runs' },
        { key: 'drain', header: 'drain s', digits: 1 },
        { key: 'floor', header: 'floor s', digits: 0 },
        { key: 'ratio', header: 'floor ÷ drain', digits: 3 },
      ],
      rows,
      ratios: measured.map(({ c, ratio }) => ({ case: `${c.name}: drain vs GitHub's write rate`, ratio })),
      notes,
    };
  },
};

/** Deletes every Redis key under the prefix the app's queue used. */
async function deleteRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
