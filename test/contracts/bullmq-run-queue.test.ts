/**
 * BullmqRunQueue against the RunQueue contract on a real Redis (scripts/services-up.sh). Each test
 * gets its own key prefix and deletes every key under it afterwards.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { SqliteRunStore } from '../../src/adapters/store/sqlite-run-store.js';
import { BullmqRunQueue, retryDelayMs } from '../../src/adapters/queue/bullmq-run-queue.js';
import { RetryableError } from '../../src/ports/errors.js';
import { requireServices } from '../support/services.js';
import { describe, expect, it } from 'vitest';
import { runQueueContract } from './run-queue.contract.js';

const url = 'redis://127.0.0.1:6379';
const log = pino({ level: 'silent' });

async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

describe('BullmqRunQueue retry delay', () => {
  it.each([
    [1, new RetryableError('rate limited', { retryAfterMs: 30_000 }), 30_000],
    [5, new RetryableError('rate limited', { retryAfterMs: 0 }), 0],
    [1, new RetryableError('GitHub answered 502'), 2000],
    [3, new RetryableError('GitHub answered 502'), 8000],
    [2, new Error('not retryable, but BullMQ asks anyway'), 4000],
  ])('after attempt %i of %o waits %i ms', (attemptsMade, error, expected) => {
    expect(retryDelayMs(attemptsMade, error)).toBe(expected);
  });
});

const redisReady = await requireServices('redis');

describe.skipIf(!redisReady)('BullmqRunQueue on Redis', () => {
  runQueueContract('BullmqRunQueue', async () => {
    const prefix = `task-mgmt-test-${randomUUID()}`;
    const store = await SqliteRunStore.open(':memory:');
    const queue = new BullmqRunQueue({ url, prefix, log });
    return {
      queue,
      store,
      cleanup: async () => {
        await queue.close();
        await store.close();
        await deleteKeys(prefix);
      },
    };
  });
});
