/**
 * examples/python-worker/worker.py against the real protocol: runs enqueued by RabbitmqRunQueue on
 * RabbitMQ, recorded in PostgresRunStore, taken and finished by the Python worker. Needs Debian's
 * python3-pika and python3-psycopg2 (scripts/test-deps.sh installs them).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitmqRunQueue } from '../../src/adapters/queue/rabbitmq-run-queue.js';
import { PostgresRunStore } from '../../src/adapters/store/postgres-run-store.js';
import { newRun } from '../contracts/run-store.contract.js';
import { FakeGitHub } from '../fake-github/index.js';
import { startApp, type AppProcess } from '../support/app-process.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { requireServices } from '../support/services.js';

const python = '/usr/bin/python3';
const workerScript = fileURLToPath(new URL('../../examples/python-worker/worker.py', import.meta.url));
const amqpUrl = 'amqp://guest:guest@127.0.0.1:5672';
const pgUrl = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function pythonModulesPresent(): Promise<boolean> {
  try {
    await promisify(execFile)(python, ['-c', 'import pika, psycopg2'], { timeout: 30_000 });
    return true;
  } catch {
    const message = `${python} cannot import pika and psycopg2; run scripts/test-deps.sh (python3-pika, python3-psycopg2)`;
    if (process.env.CI === 'true') throw new Error(`${message} (CI=true: failing instead of skipping)`);
    console.warn(`\n!!! SKIPPING: ${message}.\n`);
    return false;
  }
}

const ready = (await requireServices('rabbitmq', 'postgres')) && (await pythonModulesPresent());

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Runs the worker to its exit; resolves with the exit code and everything it logged. */
function runWorker(env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [workerScript], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

describe.skipIf(!ready)('the Python worker example', () => {
  const schema = `task_mgmt_test_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const queueName = `task-mgmt-test-${randomUUID()}.runs`;
  let store: PostgresRunStore;
  let queue: RabbitmqRunQueue;

  beforeAll(async () => {
    await admin((client) => client.query(`CREATE SCHEMA ${schema}`));
    store = await PostgresRunStore.open(pgUrl, { schema });
    queue = new RabbitmqRunQueue({ url: amqpUrl, log: pino({ level: 'silent' }), queueName });
  });

  afterAll(async () => {
    await queue?.close();
    await store?.close();
    const connection = await connect(amqpUrl);
    try {
      const channel = await connection.createChannel();
      for (const name of [queueName, `${queueName}.dead`]) await channel.deleteQueue(name);
      for (const name of [`${queueName}.dead`, `${queueName}.cancel`]) await channel.deleteExchange(name);
    } finally {
      await connection.close();
    }
    await admin((client) => client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
  });

  it('takes a run of its task type from the queue, records sha256 in metadata, and leaves other task types queued', async () => {
    const other = await store.createRun(newRun({ taskType: 'dockerfile' }), new Date());
    const mine = await store.createRun(newRun({ taskType: 'demo/sha256', params: { text: 'hello world' } }), new Date());
    // The other task type first: the worker must skip it and still take its own.
    await queue.enqueue({ runId: other.id });
    await queue.enqueue({ runId: mine.id });

    const result = await runWorker(
      {
        AMQP_URL: amqpUrl,
        QUEUE_NAME: queueName,
        DATABASE_URL: pgUrl,
        PG_SCHEMA: schema,
        WORKER_ID: 'python-test-worker',
        TASK_TYPE: 'demo/sha256',
        ONCE: '1',
      },
      45_000,
    );
    expect(result, result.output).toMatchObject({ code: 0, signal: null });

    const done = await store.getRun(mine.id);
    expect(done, result.output).toMatchObject({
      state: 'succeeded',
      exitCode: 0,
      error: null,
      workerId: null,
      leaseUntil: null,
      metadata: { sha256: createHash('sha256').update('hello world').digest('hex'), worker: 'python' },
    });
    expect(done!.metadata.sha256).toBe('b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9');
    expect(done!.startedAt).toBeInstanceOf(Date);
    expect(done!.finishedAt!.getTime()).toBeGreaterThanOrEqual(done!.startedAt!.getTime());

    const untouched = await store.getRun(other.id);
    expect(untouched).toMatchObject({ state: 'queued', workerId: null, startedAt: null });
    expect(result.output).toContain(`run ${other.id}: skipped, its task type is dockerfile`);
    expect(result.output).toContain(`run ${mine.id}: succeeded`);
  });
});

describe.skipIf(!ready)('a task type served by the Python worker (EXTERNAL_TASK_TYPES)', () => {
  const prefix = `task-mgmt-test-${randomUUID().slice(0, 8)}`;
  const externalQueue = `${prefix}.runs.demo/sha256`;
  let gh: FakeGitHub;
  let database: TestDatabase;
  let app: AppProcess;

  beforeAll(async () => {
    gh = await FakeGitHub.start();
    database = await createTestDatabase();
    app = await startApp(gh, { QUEUE_URL: amqpUrl, QUEUE_PREFIX: prefix, DATABASE_URL: database.url, EXTERNAL_TASK_TYPES: 'demo/sha256' });
  });

  afterAll(async () => {
    await app?.stop();
    await gh?.close();
    const connection = await connect(amqpUrl);
    try {
      const channel = await connection.createChannel();
      for (const queue of [`${prefix}.runs`, externalQueue]) {
        for (const name of [queue, `${queue}.dead`]) await channel.deleteQueue(name).catch(() => undefined);
        for (const name of [`${queue}.dead`, `${queue}.cancel`]) await channel.deleteExchange(name).catch(() => undefined);
      }
    } finally {
      await connection.close().catch(() => undefined);
    }
    await database?.drop();
  });

  it('accepts a manifest that names the type, queues its /run on the type’s own queue, and the Python worker runs it', async () => {
    const manifest = 'version: 1\ntasks:\n  digest:\n    uses: demo/sha256\n    params:\n      text: { default: hello }\n';
    const repo = await gh.createRepo({ owner: 'octo-org', name: `external-${randomUUID().slice(0, 8)}`, files: { 'task-mgmt.yml': manifest } });
    gh.setRole(repo, 'maintainer', 'maintain');
    const number = gh.createIssue(repo, { author: 'maintainer', title: 'digest' });
    const { delivery } = await gh.comment(repo, number, 'maintainer', '/run digest text="hello world"');
    const check = await gh.waitFor(() => gh.checkRuns(repo).find((c) => c.status === 'queued'), {
      timeoutMs: 20_000,
      message: `no queued check run: ${JSON.stringify({ delivery, checks: gh.checkRuns(repo), comments: gh.commentsOn(repo, number).map((c) => c.body) })}\n${app.output().slice(-3000)}`,
    });
    expect(check.name).toContain('digest');

    // The run waits on its type's queue: the app's own workers, on `<prefix>.runs`, never see it.
    // (The check run comes first, the message a moment later.)
    const waiting = async (queue: string): Promise<number | null> => {
      const connection = await connect(amqpUrl);
      connection.on('error', () => undefined);
      try {
        const channel = await connection.createChannel();
        channel.on('error', () => undefined);
        return (await channel.checkQueue(queue)).messageCount;
      } catch {
        return null;
      } finally {
        await connection.close().catch(() => undefined);
      }
    };
    await gh.waitFor(async () => (await waiting(externalQueue)) === 1, { timeoutMs: 10_000, message: `no message on ${externalQueue}\n${app.output().slice(-3000)}` });
    expect(await waiting(`${prefix}.runs`)).toBe(0);

    const worker = await runWorker({ AMQP_URL: amqpUrl, QUEUE_NAME: externalQueue, DATABASE_URL: database.url, WORKER_ID: 'python-external', TASK_TYPE: 'demo/sha256', ONCE: '1' }, 45_000);
    expect(worker, worker.output).toMatchObject({ code: 0, signal: null });
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ state: string; task_type: string; metadata: string; params: string }>('SELECT state, task_type, metadata, params FROM runs WHERE id = $1', [check.externalId]);
      expect(rows[0]).toMatchObject({ state: 'succeeded', task_type: 'demo/sha256' });
      expect(JSON.parse(rows[0]!.params)).toEqual({ text: 'hello world' });
      expect(JSON.parse(rows[0]!.metadata)).toEqual({ sha256: createHash('sha256').update('hello world').digest('hex'), worker: 'python' });
    } finally {
      await client.end();
    }
  });
});
