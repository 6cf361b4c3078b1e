/**
 * The Pins and NamedLeases sections of the RunStore contract (src/ports/run-store.ts): pins with
 * an expiry, the block index that makes them reference-counted across runs, the garbage the
 * collector deletes, and the lease that keeps one collector at a time. Called from
 * `runStoreContract` with the store of the running test.
 */
import { describe, expect, it } from 'vitest';
import type { RunStore } from '../../src/ports/run-store.js';
import { at, newRun } from './run-store.contract.js';

export function pinsContract(store: () => RunStore): void {
  /** A recorded run whose outputs (blocks `blocks`, root `root`) are pinned from at(0) until `until`. */
  async function pinnedRun(root: string, blocks: string[], until: Date, repo = { owner: 'octo-org', name: 'archive', installationId: 4242 }) {
    const run = await store().createRun(newRun({ repo }), at(0));
    await store().startPin({ runId: run.id, kind: 'outputs', pinnedUntil: until }, at(0));
    await store().indexPinBlocks({ runId: run.id, kind: 'outputs' }, blocks);
    await store().completePin({ runId: run.id, kind: 'outputs', root }, at(1));
    return run;
  }

  describe('Pins', () => {
    it('indexes an add’s blocks before its root is known, and names the root at the end', async () => {
      const run = await store().createRun(newRun(), at(0));
      await store().startPin({ runId: run.id, kind: 'outputs', pinnedUntil: at(100) }, at(0));
      expect(await store().listPins(run.id)).toStrictEqual([{ runId: run.id, kind: 'outputs', root: null, pinnedUntil: at(100) }]);
      await store().indexPinBlocks({ runId: run.id, kind: 'outputs' }, ['leaf-a', 'leaf-b']);
      await store().indexPinBlocks({ runId: run.id, kind: 'outputs' }, ['leaf-b', 'leaf-c', 'leaf-c']);
      // Not served while the add runs: the root is not known, nothing links to these blocks yet.
      expect(await store().livePinsHolding('leaf-a', at(2))).toStrictEqual([]);
      expect((await store().getRun(run.id))?.pinnedUntil).toBeNull();

      const pin = await store().completePin({ runId: run.id, kind: 'outputs', root: 'root-1' }, at(2));
      expect(pin).toStrictEqual({ runId: run.id, kind: 'outputs', root: 'root-1', pinnedUntil: at(100) });
      const holder = { runId: run.id, kind: 'outputs', root: 'root-1', pinnedUntil: at(100), repo: run.repo };
      for (const block of ['leaf-a', 'leaf-b', 'leaf-c', 'root-1']) expect(await store().livePinsHolding(block, at(3))).toStrictEqual([holder]);
      expect(await store().livePinsHolding('leaf-z', at(3))).toStrictEqual([]);
      expect((await store().getRun(run.id))?.pinnedUntil).toStrictEqual(at(100));
    });

    it('refuses to index or complete a pin that was never started', async () => {
      const run = await store().createRun(newRun(), at(0));
      await expect(store().indexPinBlocks({ runId: run.id, kind: 'outputs' }, ['x'])).rejects.toThrow(/no outputs pin/);
      await expect(store().completePin({ runId: run.id, kind: 'provenance', root: 'r' }, at(1))).rejects.toThrow(/no provenance pin/);
    });

    it('answers which live pins hold a block, of every run sharing it, and none once they ended', async () => {
      const other = { owner: 'octo-org', name: 'private', installationId: 4242 };
      const short = await pinnedRun('root-s', ['shared', 'only-s'], at(10));
      const long = await pinnedRun('root-l', ['shared', 'only-l'], at(1000), other);
      const holders = await store().livePinsHolding('shared', at(5));
      expect(holders.map((h) => [h.runId, h.root, h.repo.name])).toStrictEqual([
        [long.id, 'root-l', 'private'],
        [short.id, 'root-s', 'archive'],
      ]);
      expect((await store().livePinsHolding('shared', at(10))).map((h) => h.runId)).toStrictEqual([long.id]);
      expect(await store().livePinsHolding('only-s', at(10))).toStrictEqual([]);
      expect(await store().livePinsHolding('shared', at(5), 1)).toHaveLength(1);
    });

    it('extends a run’s pins to the later of their expiry and the one asked for', async () => {
      const run = await pinnedRun('root-x', ['b'], at(100));
      expect(await store().extendPins(run.id, at(50))).toStrictEqual(at(100));
      expect(await store().extendPins(run.id, at(200))).toStrictEqual(at(200));
      expect((await store().getRun(run.id))?.pinnedUntil).toStrictEqual(at(200));
      expect(await store().listPins(run.id)).toStrictEqual([{ runId: run.id, kind: 'outputs', root: 'root-x', pinnedUntil: at(200) }]);
      const unpinned = await store().createRun(newRun(), at(0));
      expect(await store().extendPins(unpinned.id, at(200))).toBeNull();
    });

    it('removes expired pins and marks as garbage only the blocks no other pin lists', async () => {
      const short = await pinnedRun('root-s', ['shared', 'only-s'], at(10));
      const long = await pinnedRun('root-l', ['shared', 'only-l'], at(1000));
      expect(await store().removeExpiredPins(at(9), 100)).toStrictEqual({ removed: [], released: [] });

      const { removed, released } = await store().removeExpiredPins(at(10), 100);
      expect(removed).toStrictEqual([{ runId: short.id, kind: 'outputs', root: 'root-s', pinnedUntil: at(10) }]);
      expect(released).toStrictEqual(['root-s']);
      expect(await store().listPins(short.id)).toStrictEqual([]);
      // The run keeps the expiry it had, for whoever reads it later.
      expect((await store().getRun(short.id))?.pinnedUntil).toStrictEqual(at(10));

      expect(await store().garbageBlocks(at(9), 100)).toStrictEqual([]);
      expect((await store().garbageBlocks(at(10), 100)).sort()).toStrictEqual(['only-s', 'root-s']);
      await store().forgetGarbage(['only-s', 'root-s']);
      expect(await store().garbageBlocks(at(10), 100)).toStrictEqual([]);
      expect((await store().livePinsHolding('shared', at(11))).map((h) => h.runId)).toStrictEqual([long.id]);
      // Gone from the index: extending a collected run finds nothing to extend.
      expect(await store().extendPins(short.id, at(5000))).toBeNull();
    });

    it('keeps a root pinned by two runs until the last pin on it ends', async () => {
      const first = await pinnedRun('root-same', ['a', 'b'], at(10));
      const second = await pinnedRun('root-same', ['a', 'b'], at(20));
      const first_ = await store().removeExpiredPins(at(15), 100);
      expect(first_.removed.map((p) => p.runId)).toStrictEqual([first.id]);
      expect(first_.released).toStrictEqual([]);
      expect(await store().garbageBlocks(at(15), 100)).toStrictEqual([]);
      expect((await store().livePinsHolding('a', at(15))).map((h) => h.runId)).toStrictEqual([second.id]);
      expect((await store().removeExpiredPins(at(20), 100)).released).toStrictEqual(['root-same']);
      expect((await store().garbageBlocks(at(20), 100)).sort()).toStrictEqual(['a', 'b', 'root-same']);
    });

    it('leaves a pin extended after it expired but before it was collected', async () => {
      const run = await pinnedRun('root-e', ['e'], at(10));
      await store().extendPins(run.id, at(100));
      expect(await store().removeExpiredPins(at(50), 100)).toStrictEqual({ removed: [], released: [] });
    });

    it('drops the garbage mark of a block a later pin lists again', async () => {
      await pinnedRun('root-old', ['again', 'gone'], at(10));
      await store().removeExpiredPins(at(10), 100);
      // A later add writes the same block: it is indexed, so it is no longer garbage.
      const later = await store().createRun(newRun(), at(11));
      await store().startPin({ runId: later.id, kind: 'outputs', pinnedUntil: at(100) }, at(11));
      await store().indexPinBlocks({ runId: later.id, kind: 'outputs' }, ['again']);
      expect((await store().garbageBlocks(at(12), 100)).sort()).toStrictEqual(['gone', 'root-old']);
      await store().completePin({ runId: later.id, kind: 'outputs', root: 'root-new' }, at(12));
      expect((await store().garbageBlocks(at(12), 100)).sort()).toStrictEqual(['gone', 'root-old']);
    });

    it('collects the blocks of a pin whose add never completed', async () => {
      const run = await store().createRun(newRun(), at(0));
      await store().startPin({ runId: run.id, kind: 'outputs', pinnedUntil: at(10) }, at(0));
      await store().indexPinBlocks({ runId: run.id, kind: 'outputs' }, ['half-a', 'half-b']);
      const { removed, released } = await store().removeExpiredPins(at(10), 100);
      expect(removed).toStrictEqual([{ runId: run.id, kind: 'outputs', root: null, pinnedUntil: at(10) }]);
      expect(released).toStrictEqual([]);
      expect((await store().garbageBlocks(at(10), 100)).sort()).toStrictEqual(['half-a', 'half-b']);
    });

    it('gives up an earlier attempt’s pin when a run pins again', async () => {
      const run = await pinnedRun('root-try1', ['t1'], at(100));
      await store().startPin({ runId: run.id, kind: 'outputs', pinnedUntil: at(100) }, at(5));
      expect((await store().garbageBlocks(at(5), 100)).sort()).toStrictEqual(['root-try1', 't1']);
      expect(await store().listPins(run.id)).toStrictEqual([{ runId: run.id, kind: 'outputs', root: null, pinnedUntil: at(100) }]);
    });

    it('removes at most the limit of expired pins per call', async () => {
      for (let i = 0; i < 3; i++) await pinnedRun(`root-${i}`, [`b-${i}`], at(10 + i));
      expect((await store().removeExpiredPins(at(100), 2)).removed).toHaveLength(2);
      expect((await store().removeExpiredPins(at(100), 2)).removed).toHaveLength(1);
    });

    it('indexes thousands of blocks in one call', async () => {
      const blocks = Array.from({ length: 2_345 }, (_, i) => `many-${i}`);
      await pinnedRun('root-many', blocks, at(10));
      expect(await store().livePinsHolding('many-2344', at(1))).toHaveLength(1);
      await store().removeExpiredPins(at(10), 10);
      const garbage: string[] = [];
      for (let batch = await store().garbageBlocks(at(10), 1000); batch.length > 0; batch = await store().garbageBlocks(at(10), 1000)) {
        garbage.push(...batch);
        await store().forgetGarbage(batch);
      }
      expect(garbage).toHaveLength(2_346);
    });
  });

  describe('NamedLeases', () => {
    it('gives a lease to one holder at a time, to another once it ends or is released', async () => {
      expect(await store().takeLease('collector', 'a', at(60), at(0))).toBe(true);
      expect(await store().takeLease('collector', 'b', at(70), at(10))).toBe(false);
      expect(await store().takeLease('other', 'b', at(70), at(10))).toBe(true);
      expect(await store().takeLease('collector', 'a', at(120), at(50))).toBe(true);
      expect(await store().takeLease('collector', 'b', at(130), at(70))).toBe(false);
      expect(await store().takeLease('collector', 'b', at(180), at(120))).toBe(true);
      await store().releaseLease('collector', 'a');
      expect(await store().takeLease('collector', 'a', at(200), at(130))).toBe(false);
      await store().releaseLease('collector', 'b');
      expect(await store().takeLease('collector', 'a', at(200), at(130))).toBe(true);
    });

    it('lets exactly one of many concurrent takers win', async () => {
      const outcomes = await Promise.all(Array.from({ length: 10 }, (_, i) => store().takeLease('race', `w${i}`, at(60), at(0))));
      expect(outcomes.filter(Boolean)).toHaveLength(1);
    });
  });
}
