/**
 * The Retention section of the RunStore contract (src/ports/run-store.ts): handled webhook
 * deliveries, audit entries and the logs of runs that ended before a cut-off are deleted in
 * bounded batches; pending deliveries, newer rows and the logs of runs still going are kept.
 * Called from `runStoreContract` with the store of the running test.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AuditEntry, RunStore } from '../../src/ports/run-store.js';
import { at, newRun } from './run-store.contract.js';

export function retentionContract(store: () => RunStore): void {
  describe('Retention', () => {
    /** A run that ended at `endedAt` seconds, with a log of `chunks` pieces. */
    async function endedRunWithLog(endedAt: number | null, chunks: number): Promise<string> {
      const run = await store().createRun(newRun(), at(0));
      await store().claimRun(run.id, { workerId: 'w', leaseUntil: at(1000), maxRunningInRepo: 100 }, at(1));
      let offset = 0;
      for (let i = 0; i < chunks; i += 1) {
        const bytes = Buffer.from(`line ${i} of ${run.id}\n`);
        await store().appendLog(run.id, { offset, bytes }, 1024 * 1024);
        offset += bytes.byteLength;
      }
      if (endedAt !== null) expect(await store().transition(run.id, 'succeed', at(endedAt), {}, { heldBy: 'w' })).not.toBeNull();
      return run.id;
    }

    it('deletes handled deliveries older than the cut-off, a batch at a time, and keeps pending and newer ones', async () => {
      const delivery = (receivedAt: number) => ({ id: randomUUID(), event: 'issue_comment', payload: { n: receivedAt }, receivedAt: at(receivedAt) });
      const old = [delivery(1), delivery(2), delivery(3)];
      const pendingOld = delivery(0);
      const recent = delivery(50);
      for (const d of [...old, pendingOld, recent]) await store().recordDelivery(d);
      for (const [i, d] of old.entries()) await store().markDeliveryHandled(d.id, at(10 + i));
      await store().markDeliveryHandled(recent.id, at(60));

      expect((await store().pruneBefore(at(30), 2)).deliveries).toBe(2);
      expect((await store().pruneBefore(at(30), 2)).deliveries).toBe(1);
      expect((await store().pruneBefore(at(30), 2)).deliveries).toBe(0);
      // Gone: a redelivery of a pruned one is recorded as new. Kept: the newer one is still seen.
      for (const d of old) expect(await store().recordDelivery(d)).toBe(true);
      expect(await store().recordDelivery(recent)).toBe(false);
      // A delivery never handled is kept however old: it is still to be handled.
      expect((await store().pendingDeliveries(10)).map((d) => d.id)).toContain(pendingOld.id);
    });

    it('deletes audit entries older than the cut-off, a batch at a time', async () => {
      const entry = (seconds: number): AuditEntry => ({
        at: at(seconds), repo: 'octo-org/archive', number: 1, actor: 'mona', action: 'run', allowed: true, reason: `at ${seconds}`, runId: null,
      });
      const entries = [entry(1), entry(2), entry(3), entry(4), entry(40), entry(50)];
      for (const e of entries) await store().audit(e);
      expect((await store().pruneBefore(at(30), 3)).audit).toBe(3);
      expect((await store().pruneBefore(at(30), 3)).audit).toBe(1);
      expect((await store().pruneBefore(at(30), 3)).audit).toBe(0);
      expect(await store().listAudit('octo-org/archive')).toStrictEqual([entries[4], entries[5]]);
      // Exactly at the cut-off is not older than it.
      expect((await store().pruneBefore(at(40), 10)).audit).toBe(0);
    });

    it('deletes the logs of runs that ended before the cut-off, piece by piece, and keeps the logs of newer and running runs', async () => {
      const old = await endedRunWithLog(5, 3);
      const newer = await endedRunWithLog(50, 2);
      const running = await endedRunWithLog(null, 2);
      const sizeBefore = (await store().logInfo(old)).size;
      expect(sizeBefore).toBeGreaterThan(0);

      expect((await store().pruneBefore(at(30), 2)).logChunks).toBe(2);
      // Half pruned: what is left of it is still read from a consistent record.
      expect((await store().logInfo(old)).size).toBe(sizeBefore);
      expect((await store().pruneBefore(at(30), 2)).logChunks).toBe(1);
      expect((await store().pruneBefore(at(30), 2)).logChunks).toBe(0);
      expect(await store().logInfo(old)).toStrictEqual({ size: 0, cut: null });
      expect((await store().readLog(old, 0)).bytes.byteLength).toBe(0);
      // The run itself stays, with its state and times.
      expect((await store().getRun(old))?.state).toBe('succeeded');

      for (const id of [newer, running]) {
        const read = await store().readLog(id, 0);
        expect(Buffer.from(read.bytes).toString(), id).toContain(`line 1 of ${id}`);
      }
    });
  });
}
