/** The periodic pruning of RETENTION, on a real SQLite store: bounded batches until done, one replica at a time. */
import { mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteRunStore } from '../adapters/store/sqlite-run-store.js';
import { at } from '../../test/contracts/run-store.contract.js';
import { pruneOldLogFiles } from './old-log-files.js';
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
    expect(done).toStrictEqual({ pruned: true, deliveries: 0, audit: 23, logChunks: 0, logFiles: 0 });
    expect(await store.listAudit('octo-org/archive')).toHaveLength(2);

    // The other replica finds the lease taken and prunes nothing.
    await auditAt(0, 3);
    expect(await second.prune()).toStrictEqual({ pruned: false, deliveries: 0, audit: 0, logChunks: 0, logFiles: 0 });
    expect(await store.listAudit('octo-org/archive')).toHaveLength(5);

    // Started, the holder prunes at once; stopped, it gives the lease back and the other takes over.
    await first.start().stop();
    expect(await store.listAudit('octo-org/archive')).toHaveLength(2);
    expect(await store.takeLease(RETENTION_LEASE, 'probe', new Date(now().getTime() + 1), now())).toBe(true);
    await store.releaseLease(RETENTION_LEASE, 'probe');
    await auditAt(0, 4);
    expect(await second.prune()).toStrictEqual({ pruned: true, deliveries: 0, audit: 4, logChunks: 0, logFiles: 0 });
  });

  it('prunes log files of this machine older than RETENTION too, in batches', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'retention-logs-'));
    try {
      const now = () => new Date(at(0).getTime() + 100 * day);
      for (let i = 0; i < 7; i += 1) await writtenAt(join(dir, `old-${i}.log`), at(0));
      await writtenAt(join(dir, 'recent.log'), at(95 * 24 * 3600));
      const pruner = new Pruner({ store, retentionMs: 90 * day, intervalMs: 3600_000, holder: 'one', log, now, batch: 3, logDirs: [dir, join(dir, 'missing')] });
      expect(await pruner.prune()).toStrictEqual({ pruned: true, deliveries: 0, audit: 0, logChunks: 0, logFiles: 7 });
      expect(await readdir(dir)).toEqual(['recent.log']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('pruneOldLogFiles', () => {
  it('deletes only old regular .log files directly in the folder, at most `limit` of them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'old-logs-'));
    try {
      const old = new Date(Date.now() - 200 * day);
      const before = new Date(Date.now() - 90 * day);
      for (const name of ['a.log', 'b.log', 'c.log']) await writtenAt(join(dir, name), old);
      await writtenAt(join(dir, 'notes.txt'), old);
      await writtenAt(join(dir, 'fresh.log'), new Date());
      await mkdir(join(dir, 'folder.log'));
      await writtenAt(join(dir, 'folder.log', 'inner.log'), old);
      // A link is not followed, and not deleted: only what the app wrote itself is.
      const outside = join(dir, 'folder.log', 'target.log');
      await writtenAt(outside, old);
      await symlink(outside, join(dir, 'link.log'));

      expect(await pruneOldLogFiles(dir, before, 2)).toBe(2);
      expect(await pruneOldLogFiles(dir, before, 10)).toBe(1);
      expect((await readdir(dir)).sort()).toEqual(['folder.log', 'fresh.log', 'link.log', 'notes.txt']);
      expect((await readdir(join(dir, 'folder.log'))).sort()).toEqual(['inner.log', 'target.log']);
      expect(await pruneOldLogFiles(join(dir, 'missing'), before, 10)).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

async function writtenAt(path: string, when: Date): Promise<void> {
  await writeFile(path, 'a line\n');
  await utimes(path, when, when);
}
