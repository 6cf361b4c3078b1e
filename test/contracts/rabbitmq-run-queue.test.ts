/**
 * RabbitmqRunQueue against the RunQueue contract on a real RabbitMQ (scripts/services-up.sh),
 * plus what only a broker shows: poison messages, dead-lettering, retries and a dropped
 * connection. Each test gets its own queue name; its queues and exchanges are deleted afterwards.
 * Dropping connections uses `rabbitmqctl`, so those tests need the broker's own CLI.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { connect, type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SqliteRunStore } from '../../src/adapters/store/sqlite-run-store.js';
import { attemptsHeader, RabbitmqRunQueue, retryBucketMs, retryDelayMs, type RabbitmqRunQueueOptions } from '../../src/adapters/queue/rabbitmq-run-queue.js';
import { DeferredError, RetryableError } from '../../src/ports/errors.js';
import type { RunMessage } from '../../src/core/runs/run.js';
import { requireServices } from '../support/services.js';
import { runQueueContract } from './run-queue.contract.js';

const url = 'amqp://guest:guest@127.0.0.1:5672';
const log = pino({ level: 'silent' });

/** A logger that keeps each message, to wait for what the queue reports. */
function recordingLog(): { log: pino.Logger; messages: string[] } {
  const messages: string[] = [];
  return { log: pino({ level: 'debug' }, { write: (line: string) => messages.push(String(JSON.parse(line).msg)) }), messages };
}
const exec = promisify(execFile);
/** Every queue and exchange of this file starts with it, so a final sweep can find leftovers. */
const filePrefix = `task-mgmt-test-${randomUUID().slice(0, 8)}`;

describe('RabbitmqRunQueue retry delay', () => {
  it.each([
    [1, new RetryableError('rate limited', { retryAfterMs: 30_000 }), 30_000],
    [5, new RetryableError('rate limited', { retryAfterMs: 0 }), 0],
    [1, new RetryableError('GitHub answered 502'), 2000],
    [3, new RetryableError('GitHub answered 502'), 8000],
    [30, new RetryableError('GitHub answered 502'), 15 * 60_000],
  ])('after attempt %i of %o waits %i ms', (attempts, error, expected) => {
    expect(retryDelayMs(attempts, error)).toBe(expected);
  });

  it.each([
    [0, 1],
    [7, 7],
    [300, 300],
    [301, 310],
    [2000, 2000],
    [12_345, 13_000],
    [60_001, 61_000],
  ])('puts a %i ms wait in the %i ms retry queue', (delay, bucket) => {
    expect(retryBucketMs(delay)).toBe(bucket);
  });
});

async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await exec('rabbitmqctl', ['-q', ...args], { timeout: 30_000 });
  return stdout;
}

const rabbitmqctlWorks = await rabbitmqctl('status')
  .then(() => true)
  .catch(() => false);

/** Closes every broker connection whose connection_name contains `part`, as a broker restart would. */
async function dropConnections(part: string): Promise<number> {
  // The text output, not --formatter json: that prints pids in a form close_connection refuses.
  const lines = (await rabbitmqctl('list_connections', '--no-table-headers', 'pid', 'client_properties')).split('\n');
  const pids = lines
    .filter((line) => line.includes(`{"connection_name","`) && line.includes(part))
    .map((line) => line.split('\t')[0]!.trim());
  for (const pid of pids) await rabbitmqctl('close_connection', pid, 'test: simulated broker restart');
  return pids.length;
}

async function withChannel<T>(work: (channel: Channel) => Promise<T>): Promise<T> {
  const connection: ChannelModel = await connect(url);
  try {
    const channel = await connection.createChannel();
    return await work(channel);
  } finally {
    await connection.close();
  }
}

async function deleteTopology(queueName: string): Promise<void> {
  await withChannel(async (channel) => {
    for (const queue of [queueName, `${queueName}.dead`]) await channel.deleteQueue(queue);
    for (const exchange of [`${queueName}.dead`, `${queueName}.cancel`]) await channel.deleteExchange(exchange);
  });
}

/** Retry queues are named after their delay; whichever a test made are swept here. */
async function deleteLeftoverQueues(): Promise<void> {
  if (!rabbitmqctlWorks) return;
  const rows = JSON.parse(await rabbitmqctl('list_queues', 'name', '--formatter', 'json')) as { name: string }[];
  const leftovers = rows.map((row) => row.name).filter((name) => name.startsWith(filePrefix));
  if (leftovers.length === 0) return;
  await withChannel(async (channel) => {
    for (const name of leftovers) await channel.deleteQueue(name);
  });
}

function newQueueName(): string {
  return `${filePrefix}-${randomUUID().slice(0, 8)}`;
}

const rabbitmqReady = await requireServices('rabbitmq');

describe.skipIf(!rabbitmqReady)('RabbitmqRunQueue on RabbitMQ', () => {
  afterAll(deleteLeftoverQueues);

  runQueueContract('RabbitmqRunQueue', async () => {
    const queueName = newQueueName();
    const store = await SqliteRunStore.open(':memory:');
    const queue = new RabbitmqRunQueue({ url, log, queueName });
    return {
      queue,
      store,
      cleanup: async () => {
        await queue.close();
        await store.close();
        await deleteTopology(queueName);
      },
    };
  });

  describe('RabbitMQ specifics', () => {
    let queueName: string;
    let queue: RabbitmqRunQueue;
    let client: ChannelModel;
    let channel: Channel;

    function open(options: Partial<RabbitmqRunQueueOptions> = {}): RabbitmqRunQueue {
      queue = new RabbitmqRunQueue({ url, log, queueName, ...options });
      return queue;
    }

    /** A handler recording each call; `work` decides what a call does. */
    function recorder(work: (message: RunMessage, call: number) => Promise<void> = async () => undefined) {
      const calls: string[] = [];
      const handler = async (message: RunMessage) => {
        calls.push(message.runId);
        await work(message, calls.filter((id) => id === message.runId).length);
      };
      return { calls, handler };
    }

    async function deadLetters(): Promise<GetMessage[]> {
      const found: GetMessage[] = [];
      for (;;) {
        const message = await channel.get(`${queueName}.dead`, { noAck: true });
        if (!message) return found;
        found.push(message);
      }
    }

    beforeAll(async () => {
      client = await connect(url);
      channel = await client.createChannel();
    });

    afterAll(async () => {
      await client.close();
    });

    afterEach(async () => {
      await queue.close();
      await deleteTopology(queueName);
    });

    it('declares the documented topology, so other clients can declare it too', async () => {
      queueName = newQueueName();
      await open({ consumerTimeoutMs: 3_600_000 }).consume(async () => undefined, { concurrency: 1 });
      // Declaring with other arguments would fail with PRECONDITION_FAILED and close the channel.
      await withChannel(async (other) => {
        await other.assertQueue(queueName, {
          durable: true,
          arguments: {
            'x-queue-type': 'quorum',
            'x-dead-letter-exchange': `${queueName}.dead`,
            'x-delivery-limit': 5,
            'x-consumer-timeout': 3_600_000,
          },
        });
        await other.assertQueue(`${queueName}.dead`, { durable: true });
        await other.assertExchange(`${queueName}.dead`, 'fanout', { durable: true });
        await other.assertExchange(`${queueName}.cancel`, 'fanout', { durable: true });
      });
    });

    it('publishes persistent JSON with the run id as message id', async () => {
      queueName = newQueueName();
      const runId = randomUUID();
      await open().enqueue({ runId });
      const message = await channel.get(queueName, { noAck: true });
      expect(message).not.toBe(false);
      if (!message) return;
      expect(JSON.parse(message.content.toString())).toStrictEqual({ runId });
      expect(message.properties).toMatchObject({ contentType: 'application/json', messageId: runId, deliveryMode: 2 });
    });

    it('dead-letters a message that is not a run message and goes on with the others', async () => {
      queueName = newQueueName();
      const { calls, handler } = recorder();
      await open().consume(handler, { concurrency: 1 });
      channel.sendToQueue(queueName, Buffer.from('{not json'), { contentType: 'application/json' });
      channel.sendToQueue(queueName, Buffer.from(JSON.stringify({ run: 'no runId' })), { contentType: 'application/json' });
      const good = randomUUID();
      await queue.enqueue({ runId: good });

      await vi.waitFor(() => expect(calls).toStrictEqual([good]), { timeout: 5000, interval: 20 });
      let dead: GetMessage[] = [];
      await vi.waitFor(
        async () => {
          dead = [...dead, ...(await deadLetters())];
          expect(dead).toHaveLength(2);
        },
        { timeout: 5000, interval: 50 },
      );
      expect(dead.map((message) => message.content.toString())).toStrictEqual(['{not json', '{"run":"no runId"}']);
      expect(dead[0]?.properties.headers?.['x-death']?.[0]).toMatchObject({ reason: 'rejected', queue: queueName });
    });

    it('dead-letters a run whose handler keeps throwing RetryableError after maxAttempts', async () => {
      queueName = newQueueName();
      const { calls, handler } = recorder(async () => {
        throw new RetryableError('GitHub answered 502', { retryAfterMs: 100 });
      });
      await open({ maxAttempts: 3 }).consume(handler, { concurrency: 1 });
      const runId = randomUUID();
      await queue.enqueue({ runId });

      let dead: GetMessage[] = [];
      await vi.waitFor(
        async () => {
          dead = [...dead, ...(await deadLetters())];
          expect(dead).toHaveLength(1);
        },
        { timeout: 5000, interval: 50 },
      );
      expect(calls).toStrictEqual([runId, runId, runId]);
      expect(JSON.parse(dead[0]!.content.toString())).toStrictEqual({ runId });
      expect(dead[0]!.properties.headers?.[attemptsHeader]).toBe(2);
    });

    it('does not count a DeferredError as an attempt', async () => {
      queueName = newQueueName();
      const { calls, handler } = recorder(async (_message, call) => {
        if (call <= 4) throw new DeferredError('repository busy', 50);
      });
      await open({ maxAttempts: 1 }).consume(handler, { concurrency: 1 });
      const runId = randomUUID();
      await queue.enqueue({ runId });

      await vi.waitFor(() => expect(calls).toHaveLength(5), { timeout: 5000, interval: 20 });
      await sleep(300);
      expect(calls).toHaveLength(5);
      expect(await deadLetters()).toHaveLength(0);
    });

    it('gives up on a publish no broker confirms within publishTimeoutMs, with a RetryableError', async () => {
      queueName = newQueueName();
      // Nothing listens on port 1: every connection attempt is refused.
      open({ url: 'amqp://guest:guest@127.0.0.1:1', publishTimeoutMs: 500 });
      const started = Date.now();
      await expect(queue.enqueue({ runId: randomUUID() })).rejects.toBeInstanceOf(RetryableError);
      expect(Date.now() - started).toBeLessThan(3000);
    });

    it.skipIf(!rabbitmqctlWorks)('reconnects after the broker drops its connection, losing no run', async () => {
      queueName = newQueueName();
      let releaseHeld: () => void = () => undefined;
      const held = new Promise<void>((resolve) => (releaseHeld = resolve));
      const holdId = randomUUID();
      const { calls, handler } = recorder(async (message, call) => {
        // The first delivery of this run is in the worker's hands when the connection drops.
        if (message.runId === holdId && call === 1) await held;
      });
      const recording = recordingLog();
      await open({ log: recording.log }).consume(handler, { concurrency: 4 });
      const before = randomUUID();
      await queue.enqueue({ runId: before });
      await queue.enqueue({ runId: holdId });
      await vi.waitFor(() => expect(calls).toStrictEqual(expect.arrayContaining([before, holdId])), { timeout: 5000, interval: 20 });

      expect(await dropConnections(queueName)).toBe(1);
      await vi.waitFor(() => expect(recording.messages).toContain('lost the RabbitMQ connection; reconnecting'), { timeout: 5000, interval: 10 });
      // Enqueued while the adapter is reconnecting: the publish waits for the new connection.
      const during = randomUUID();
      const enqueued = queue.enqueue({ runId: during });
      releaseHeld();
      await enqueued;
      const after = randomUUID();
      await queue.enqueue({ runId: after });

      await vi.waitFor(() => expect(calls).toStrictEqual(expect.arrayContaining([during, after])), { timeout: 15_000, interval: 50 });
      // Unacked when the connection dropped, so the broker hands it out again: at least once.
      await vi.waitFor(() => expect(calls.filter((id) => id === holdId)).toHaveLength(2), { timeout: 15_000, interval: 50 });
      await sleep(300);
      expect(calls.filter((id) => id === before)).toHaveLength(1);
      expect(calls.filter((id) => id === during)).toHaveLength(1);
      expect(calls.filter((id) => id === after)).toHaveLength(1);
    });

    it.skipIf(!rabbitmqctlWorks)('cancels a run taken after a reconnect', async () => {
      queueName = newQueueName();
      const aborted: string[] = [];
      await open().consume(
        async ({ runId }, { signal }) => {
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
          aborted.push(runId);
        },
        { concurrency: 1 },
      );
      await queue.enqueue({ runId: 'warm-up' });
      await queue.cancel('warm-up');
      await vi.waitFor(() => expect(aborted).toStrictEqual(['warm-up']), { timeout: 5000, interval: 20 });

      expect(await dropConnections(queueName)).toBe(1);
      const runId = randomUUID();
      await queue.enqueue({ runId });
      // The cancel queue is exclusive to the old connection; the new one binds its own.
      await vi.waitFor(
        async () => {
          await queue.cancel(runId);
          expect(aborted).toContain(runId);
        },
        { timeout: 15_000, interval: 250 },
      );
    });
  });
});
