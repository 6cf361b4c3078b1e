/** The periodic pruning of RETENTION, on a real SQLite store: bounded batches until done, one replica at a time. */
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteRunStore } from '../adapters/store/sqlite-run-store.js';
import { at } from '../../test/contracts/run-store.contract.js';
import { Pruner, RETENTION_LEASE } from './retention.js';

const day = 24 * 3600_000;
const log = pino({ level: 'silent' });

describe('Pruner', () => {
  let store: SqliteRunStore;
  beforeEach(async () => {
    store = await SqliteRunStore.open(':memory:');
  });
  afterEach(async () => {
    await store.close();
  });

  async function auditAt(seconds: number, count: number): Promise<void> {
    for (let i = 0; i < count; i += 1) {
      await store.audit({ at: at(seconds), repo: 'octo-org/archive', number: null, actor: 'mona', action: 'run', allowed: true, reason: `n${i}`, runId: null });
    }
  }

  it('prunes everything older than RETENTION in batches, keeps what is newer, and lets one replica prune at a time', async () => {
    await auditAt(0, 23);
    await auditAt(10 * 24 * 3600, 2);
    // "Now" is 100 days after the old entries; RETENTION 90 days keeps the ones 10 days in.
    const now = () => new Date(at(0).getTime() + 100 * day);
    const first = new Pruner({ store, retentionMs: 90 * day, intervalMs: 3600_000, holder: 'one', log, now, batch: 5 });
    const second = new Pruner({ store, retentionMs: 90 * day, intervalMs: 3600_000, holder: 'two', log, now, batch: 5 });

    const done = await first.prune();
    expect(done).toStrictEqual({ pruned: true, deliveries: 0, audit: 23, logChunks: 0 });
    expect(await store.listAudit('octo-org/archive')).toHaveLength(2);

    // The other replica finds the lease taken and prunes nothing.
    await auditAt(0, 3);
    expect(await second.prune()).toStrictEqual({ pruned: false, deliveries: 0, audit: 0, logChunks: 0 });
    expect(await store.listAudit('octo-org/archive')).toHaveLength(5);

    // Started, the holder prunes at once; stopped, it gives the lease back and the other takes over.
    await first.start().stop();
    expect(await store.listAudit('octo-org/archive')).toHaveLength(2);
    expect(await store.takeLease(RETENTION_LEASE, 'probe', new Date(now().getTime() + 1), now())).toBe(true);
    await store.releaseLease(RETENTION_LEASE, 'probe');
    await auditAt(0, 4);
    expect(await second.prune()).toStrictEqual({ pruned: true, deliveries: 0, audit: 4, logChunks: 0 });
  });
});
