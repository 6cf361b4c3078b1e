/**
 * While the queue's server is down, a producer fails at once with a QueueUnavailableError (the
 * request that enqueues can say so) instead of waiting for the server; a consumer says at warn
 * that it lost the connection and takes runs again once the server is back.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BullmqRunQueue } from '../../src/adapters/queue/bullmq-run-queue.js';
import { RabbitmqRunQueue } from '../../src/adapters/queue/rabbitmq-run-queue.js';
import { QueueUnavailableError } from '../../src/ports/errors.js';
import type { RunQueue } from '../../src/ports/run-queue.js';
import { requireServices } from '../support/services.js';
import { canRunOwn, createOwnVhost, rabbitmqctl, startOwnRedis } from '../support/own-servers.js';

/** Far longer than "at once": an enqueue that waited for the server would take this long. */
const producerTimeoutMs = 30_000;

function capturedLog() {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), warnings: () => lines.filter((line) => line.level === 40).map((line) => line.msg) };
}

async function eventually(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function timed<T>(work: Promise<T>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  try {
    await work;
    return { error: null, ms: Date.now() - started };
  } catch (error) {
    return { error, ms: Date.now() - started };
  }
}

/** The producer refuses while its connection is down: ask until it takes the run. */
async function enqueueOnceBack(queue: RunQueue, runId: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await queue.enqueue({ runId });
    } catch (error) {
      if (!(error instanceof QueueUnavailableError) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

describe('BullMQ while Redis is down', async () => {
  const ready = (await requireServices('redis')) && (await canRunOwn('redis-server'));
  it.skipIf(!ready)('refuses an enqueue at once, warns once on the consumer, and takes runs again when Redis is back', async () => {
    const redis = await startOwnRedis();
    cleanups.push(() => redis.close());
    const { log, warnings } = capturedLog();
    const prefix = `outage-${randomBytes(4).toString('hex')}`;
    const producer = new BullmqRunQueue({ url: redis.url, prefix, log, producerTimeoutMs });
    const consumer = new BullmqRunQueue({ url: redis.url, prefix, log, producerTimeoutMs });
    cleanups.push(() => producer.close(), () => consumer.close());
    const taken: string[] = [];
    await consumer.consume(async ({ runId }) => void taken.push(runId), { concurrency: 1 });
    await producer.enqueue({ runId: 'before' });
    await eventually(() => taken.includes('before'), 10_000, 'the first run being taken');

    await redis.stop();
    const refused = await timed(producer.enqueue({ runId: 'during' }));
    expect(refused.error).toBeInstanceOf(QueueUnavailableError);
    expect((refused.error as Error).message).toBe('the run queue (Redis) is not answering, so it could not queue run during; try again later');
    expect(refused.ms).toBeLessThan(producerTimeoutMs / 6);
    await eventually(() => warnings().includes('lost the Redis connection; reconnecting'), 10_000, 'a warning about the lost connection');

    await redis.start();
    await enqueueOnceBack(producer, 'after', 20_000);
    await eventually(() => taken.includes('after'), 20_000, 'a run enqueued after the restart being taken');
    expect(taken).not.toContain('during');
  }, 60_000);
});

describe('RabbitMQ while the broker is away', async () => {
  const ready = (await requireServices('rabbitmq')) && (await canRunOwn('rabbitmqctl'));
  it.skipIf(!ready)('refuses an enqueue at once, warns on the consumer, and takes runs again when the vhost is back', async () => {
    const vhost = await createOwnVhost();
    cleanups.push(() => vhost.close());
    const { log, warnings } = capturedLog();
    const queues: RunQueue[] = [];
    const producer = new RabbitmqRunQueue({ url: vhost.url, log, producerTimeoutMs });
    const consumer = new RabbitmqRunQueue({ url: vhost.url, log, producerTimeoutMs, closeTimeoutMs: 1000 });
    queues.push(producer, consumer);
    cleanups.push(() => Promise.all(queues.map((queue) => queue.close())));
    const taken: string[] = [];
    await consumer.consume(async ({ runId }) => void taken.push(runId), { concurrency: 1 });
    await producer.enqueue({ runId: 'before' });
    await eventually(() => taken.includes('before'), 10_000, 'the first run being taken');

    // Taking the vhost away closes every connection to it, and no reconnection can succeed.
    await rabbitmqctl('delete_vhost', vhost.name);
    await eventually(() => warnings().includes('lost the RabbitMQ connection; reconnecting'), 10_000, 'a warning about the lost connection');
    const refused = await timed(producer.enqueue({ runId: 'during' }));
    expect(refused.error).toBeInstanceOf(QueueUnavailableError);
    expect((refused.error as Error).message).toBe('the run queue (RabbitMQ) is not answering, so it could not queue run during; try again later');
    expect(refused.ms).toBeLessThan(producerTimeoutMs / 6);
    await eventually(() => warnings().includes('could not connect to RabbitMQ; trying again'), 15_000, 'a warning about a failed reconnection');

    await rabbitmqctl('add_vhost', vhost.name);
    await rabbitmqctl('set_permissions', '-p', vhost.name, 'guest', '.*', '.*', '.*');
    await enqueueOnceBack(producer, 'after', 30_000);
    await eventually(() => taken.includes('after'), 30_000, 'a run enqueued after the vhost came back being taken');
  }, 60_000);
});
