/**
 * The CheckOutbox section of the RunStore contract (src/ports/run-store.ts): check-run updates
 * GitHub did not take, one per run, kept across restarts until they are sent. Called from
 * `runStoreContract` with the store of the running test.
 */
import { describe, expect, it } from 'vitest';
import type { RunStore } from '../../src/ports/run-store.js';
import { at } from './run-store.contract.js';

export function checkOutboxContract(store: () => RunStore): void {
  describe('CheckOutbox', () => {
    const queued = { status: 'queued', title: 'Queued', summary: 'waiting' };
    const done = { status: 'completed', conclusion: 'success', title: 'Succeeded', summary: 'ipfs://Qm…' };

    it('keeps one update per run, the newest replacing the older, oldest run first', async () => {
      await store().keepCheckUpdate('run-b', queued, at(1));
      await store().keepCheckUpdate('run-a', queued, at(2));
      await store().keepCheckUpdate('run-b', done, at(3));
      expect(await store().listCheckUpdates(10)).toStrictEqual([
        { runId: 'run-a', report: queued, keptAt: at(2), attempts: 0 },
        { runId: 'run-b', report: done, keptAt: at(3), attempts: 0 },
      ]);
      expect(await store().listCheckUpdates(1)).toHaveLength(1);
    });

    it('counts failed sends, and a newer update starts the count again', async () => {
      await store().keepCheckUpdate('run-c', queued, at(1));
      await store().checkUpdateFailed('run-c');
      await store().checkUpdateFailed('run-c');
      await store().checkUpdateFailed('run-unknown');
      expect((await store().listCheckUpdates(10)).find((u) => u.runId === 'run-c')?.attempts).toBe(2);
      await store().keepCheckUpdate('run-c', done, at(2));
      expect((await store().listCheckUpdates(10)).find((u) => u.runId === 'run-c')).toStrictEqual({ runId: 'run-c', report: done, keptAt: at(2), attempts: 0 });
    });

    it('drops an update once sent, but not one kept after the one that was sent', async () => {
      await store().keepCheckUpdate('run-d', queued, at(1));
      await store().keepCheckUpdate('run-d', done, at(5));
      await store().dropCheckUpdate('run-d', at(1));
      expect((await store().listCheckUpdates(10)).map((u) => u.runId)).toContain('run-d');
      await store().dropCheckUpdate('run-d', at(5));
      expect((await store().listCheckUpdates(10)).map((u) => u.runId)).not.toContain('run-d');
    });
  });
}
