/**
 * What SqliteRunStore costs per write over SQLite itself: N runs each created and moved
 * queued → running → succeeded through the store, against the same number of INSERT + UPDATE +
 * UPDATE statements prepared once on raw better-sqlite3, on a table of the same shape, with the
 * same pragmas, in the same process. The gap is Kysely, the read-back of each row, and mapping.
 */
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { SqliteRunStore } from '../src/adapters/store/sqlite-run-store.js';
import { perSecond, ratio, withTempDir, type Benchmark, type BenchmarkResult } from './report.js';
import { benchRun, benchRunIds } from './run-fixture.js';

const RUNS = 5000;
/** Runs done first and not counted, so both sides are measured with warm code and caches. */
const WARM_UP_RUNS = 200;
/** Each side runs this many times, alternating; the best run of each is reported. */
const ROUNDS = 3;
/** Bound on each measured side; a side that hits it reports the runs it finished. */
const CAP_MS = 60_000;
/** Writes per run: create, → running, → succeeded. */
const OPS_PER_RUN = 3;

interface Side {
  runs: number;
  ms: number;
  capped: boolean;
}

export const storeOps: Benchmark = {
  name: 'store-ops',
  async run(): Promise<BenchmarkResult> {
    // Alternating rounds on fresh files, keeping each side's best: a busy machine slows one
    // round, rarely the same side in every round.
    let raw: Side | undefined;
    let store: Side | undefined;
    for (let round = 0; round < ROUNDS; round += 1) {
      raw = faster(raw, await withTempDir('store-raw', (dir) => rawSqlite(join(dir, 'raw.sqlite'))));
      store = faster(store, await withTempDir('store-sqlite', (dir) => sqliteRunStore(join(dir, 'runs.sqlite'))));
    }
    if (!raw || !store) throw new Error('no round ran');
    const rawRate = perSecond(raw.runs * OPS_PER_RUN, raw.ms);
    const storeRate = perSecond(store.runs * OPS_PER_RUN, store.ms);
    const storeRatio = ratio(storeRate, rawRate);
    const row = (name: string, side: Side, rate: number | null, sideRatio: number | null) => ({
      case: name,
      runs: side.capped ? `${side.runs} (capped)` : side.runs,
      ops: side.runs * OPS_PER_RUN,
      seconds: side.ms / 1000,
      rate,
      perOpUs: rate === null ? null : 1e6 / rate,
      ratio: sideRatio,
    });
    const notes = [
      `${RUNS} runs after ${WARM_UP_RUNS} uncounted warm-up runs, best of ${ROUNDS} alternating rounds; one op = one write (createRun or transition; INSERT or UPDATE).`,
      'Both sides: a file in a temp folder, journal_mode=WAL, synchronous=NORMAL, each write its own transaction.',
    ];
    for (const [name, side] of [['raw', raw], ['store', store]] as const) {
      if (side.capped) notes.push(`${name} side hit the ${CAP_MS / 1000} s cap after ${side.runs} runs.`);
    }
    return {
      name: this.name,
      title: `Run store writes: ${RUNS} × (create, queued → running, running → succeeded)`,
      columns: [
        { key: 'case', header: 'case', align: 'left' },
        { key: 'runs', header: 'runs' },
        { key: 'ops', header: 'ops' },
        { key: 'seconds', header: 's', digits: 2 },
        { key: 'rate', header: 'ops/s' },
        { key: 'perOpUs', header: 'µs/op', digits: 1 },
        { key: 'ratio', header: 'ratio vs baseline', digits: 3 },
      ],
      rows: [
        row('baseline: better-sqlite3 prepared INSERT + 2 UPDATE', raw, rawRate, 1),
        row('SqliteRunStore createRun + 2 transition', store, storeRate, storeRatio),
      ],
      ratios: [{ case: 'SqliteRunStore', ratio: storeRatio }],
      notes,
    };
  },
};

async function sqliteRunStore(file: string): Promise<Side> {
  const store = await SqliteRunStore.open(file);
  try {
    const lifecycle = async (id: string) => {
      await store.createRun(benchRun(id), new Date());
      const now = new Date();
      await store.transition(id, 'claim', now, { workerId: 'bench-worker', leaseUntil: new Date(now.getTime() + 30_000) });
      await store.transition(id, 'succeed', new Date(), { exitCode: 0 });
    };
    for (const id of benchRunIds('warm', WARM_UP_RUNS)) await lifecycle(id);
    return await measure(benchRunIds('run', RUNS), lifecycle);
  } finally {
    await store.close();
  }
}

async function rawSqlite(file: string): Promise<Side> {
  const db = new SQLite(file);
  try {
    // The pragmas SqliteRunStore.open sets.
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('synchronous = NORMAL');
    db.exec(RUNS_TABLE);
    const insert = db.prepare(`
      insert into runs (id, repo_owner, repo_name, installation_id, number, is_pull_request, sha, task, task_type,
        dockerfile, params, requested_by, "trigger", state, comment_id, output_files, created_at, queued_at, updated_at)
      values (@id, @repoOwner, @repoName, @installationId, @number, @isPullRequest, @sha, @task, @taskType,
        @dockerfile, @params, @requestedBy, @trigger, 'queued', @commentId, '[]', @at, @at, @at)`);
    const start = db.prepare(`
      update runs set state = 'running', worker_id = ?, lease_until = ?, started_at = ?, updated_at = ?
      where id = ? and state in ('queued')`);
    const finish = db.prepare(`
      update runs set state = 'succeeded', exit_code = 0, worker_id = null, lease_until = null, finished_at = ?, updated_at = ?
      where id = ? and state in ('running')`);
    const lifecycle = async (id: string) => {
      const run = benchRun(id);
      const at = Date.now();
      insert.run({
        id,
        repoOwner: run.repo.owner,
        repoName: run.repo.name,
        installationId: run.repo.installationId,
        number: run.number,
        isPullRequest: run.isPullRequest ? 1 : 0,
        sha: run.sha,
        task: run.task,
        taskType: run.taskType,
        dockerfile: run.dockerfile,
        params: JSON.stringify(run.params),
        requestedBy: run.requestedBy,
        trigger: run.trigger,
        commentId: run.commentId,
        at,
      });
      const now = Date.now();
      if (start.run('bench-worker', now + 30_000, now, now, id).changes !== 1) throw new Error(`run ${id} was not queued`);
      const end = Date.now();
      if (finish.run(end, end, id).changes !== 1) throw new Error(`run ${id} was not running`);
    };
    for (const id of benchRunIds('warm', WARM_UP_RUNS)) await lifecycle(id);
    return await measure(benchRunIds('run', RUNS), lifecycle);
  } finally {
    db.close();
  }
}

/** The side with the higher rate of finished runs (a capped run counts what it finished). */
function faster(best: Side | undefined, next: Side): Side {
  if (!best) return next;
  return next.runs / next.ms > best.runs / best.ms ? next : best;
}

async function measure(ids: string[], lifecycle: (id: string) => Promise<void>): Promise<Side> {
  const startedAt = performance.now();
  const deadline = startedAt + CAP_MS;
  let runs = 0;
  for (const id of ids) {
    if (performance.now() > deadline) break;
    await lifecycle(id);
    runs += 1;
  }
  return { runs, ms: performance.now() - startedAt, capped: runs < ids.length };
}

// The columns and indexes of migration 0001's `runs` table (src/adapters/store/migrations.ts).
const RUNS_TABLE = `
  create table runs (
    id text primary key,
    repo_owner text not null,
    repo_name text not null,
    installation_id bigint not null,
    number integer,
    is_pull_request integer not null,
    sha text not null,
    task text not null,
    task_type text not null,
    dockerfile text not null,
    params text not null,
    requested_by text not null,
    "trigger" text not null,
    state text not null,
    check_run_id bigint,
    comment_id bigint,
    exit_code integer,
    output_cid text,
    output_files text not null default '[]',
    error text,
    log_tail text,
    worker_id text,
    lease_until bigint,
    created_at bigint not null,
    queued_at bigint not null,
    started_at bigint,
    finished_at bigint,
    updated_at bigint not null
  );
  create index runs_state_queued_at on runs (state, queued_at);
  create index runs_repo_created_at on runs (repo_owner, repo_name, created_at);
`;
