/** SqliteRunStore against the RunStore contract, on a file and in memory. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteRunStore } from '../../src/adapters/store/sqlite-run-store.js';
import { at, newRun, runStoreContract } from './run-store.contract.js';
import { expectUpgradedRuns, recordRunsBefore0004 } from './sql-store-upgrade.js';

async function tempDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-store-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

runStoreContract('SqliteRunStore on a file', async () => {
  const temp = await tempDir();
  // A folder that does not exist yet: open() creates it, as it must for a fresh DATA_DIR.
  const store = await SqliteRunStore.open(join(temp.dir, 'data', 'task-mgmt.sqlite'));
  return {
    store,
    cleanup: async () => {
      await store.close();
      await temp.remove();
    },
  };
});

runStoreContract('SqliteRunStore in memory', async () => {
  const store = await SqliteRunStore.open(':memory:');
  return { store, cleanup: () => store.close() };
});

describe('SqliteRunStore across restarts', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('keeps runs, deliveries and audit entries when reopened on the same file', async () => {
    const temp = await tempDir();
    cleanups.push(temp.remove);
    const file = join(temp.dir, 'task-mgmt.sqlite');

    const first = await SqliteRunStore.open(file);
    const queued = newRun();
    const finished = newRun();
    await first.createRun(queued, at(1));
    await first.createRun(finished, at(2));
    await first.transition(finished.id, 'claim', at(3), { workerId: 'w1', leaseUntil: at(33) });
    await first.transition(finished.id, 'succeed', at(4), { exitCode: 0, outputCid: 'bafyroot' });
    const pending = { id: 'delivery-1', event: 'issue_comment', payload: { action: 'created' }, receivedAt: at(5) };
    await first.recordDelivery(pending);
    await first.recordDelivery({ id: 'delivery-2', event: 'issue_comment', payload: {}, receivedAt: at(6) });
    await first.markDeliveryHandled('delivery-2', at(7));
    await first.audit({ at: at(8), repo: 'octo-org/archive', number: 17, actor: 'mona', action: 'run snapshot', allowed: true, reason: 'write access', runId: queued.id });
    const before = { queued: await first.getRun(queued.id), finished: await first.getRun(finished.id) };
    await first.close();

    // Opening again also re-runs migrate(), which must be a no-op on an up-to-date file.
    const second = await SqliteRunStore.open(file);
    cleanups.push(() => second.close());
    expect(await second.getRun(queued.id)).toStrictEqual(before.queued);
    expect(await second.getRun(finished.id)).toStrictEqual(before.finished);
    expect((await second.listQueued(10)).map((r) => r.id)).toStrictEqual([queued.id]);
    expect(await second.pendingDeliveries(10)).toStrictEqual([pending]);
    expect(await second.recordDelivery(pending)).toBe(false);
    expect(await second.recordDelivery({ id: 'delivery-2', event: 'issue_comment', payload: {}, receivedAt: at(9) })).toBe(false);
    expect(await second.listAudit('octo-org/archive')).toHaveLength(1);
  });

  it('upgrades a file written before requester kinds, marking the runs of service tokens', async () => {
    const temp = await tempDir();
    cleanups.push(temp.remove);
    const file = join(temp.dir, 'task-mgmt.sqlite');
    const old = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new SQLite(file) }) });
    await recordRunsBefore0004(old, 'sqlite');
    await old.destroy();

    const store = await SqliteRunStore.open(file);
    cleanups.push(() => store.close());
    await expectUpgradedRuns(store);
  });

  it('lets two stores on one file see each other’s runs and take each run once', async () => {
    // The app and a separate worker process share DATA_DIR this way.
    const temp = await tempDir();
    cleanups.push(temp.remove);
    const file = join(temp.dir, 'task-mgmt.sqlite');
    const app = await SqliteRunStore.open(file);
    cleanups.push(() => app.close());
    const worker = await SqliteRunStore.open(file);
    cleanups.push(() => worker.close());

    const run = newRun();
    await app.createRun(run, at(1));
    expect((await worker.listQueued(10)).map((r) => r.id)).toStrictEqual([run.id]);
    const [a, b] = await Promise.all([
      app.transition(run.id, 'claim', at(2), { workerId: 'app' }),
      worker.transition(run.id, 'claim', at(2), { workerId: 'worker' }),
    ]);
    expect([a, b].filter((r) => r !== null)).toHaveLength(1);
  });
});
