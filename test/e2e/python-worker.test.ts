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
