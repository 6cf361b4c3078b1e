/**
 * The pin collector on real parts: the SQLite run store, the embedded IPFS store in a temporary
 * DATA_DIR, outputs added and pinned as the worker adds them (addAndPin). Time is the test's: no
 * collection waits for a clock.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dagPb from '@ipld/dag-pb';
import { CID } from 'multiformats/cid';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmbeddedIpfsStore } from '../adapters/ipfs/embedded-ipfs-store.js';
import { SqliteRunStore } from '../adapters/store/sqlite-run-store.js';
import { addAndPin } from '../core/pins/add-and-pin.js';
import type { Run, RunState } from '../core/runs/run.js';
import type { NewRun } from '../ports/run-store.js';
import { Collector, DEFAULT_GARBAGE_GRACE_MS } from './collector.js';
import { outputDir } from './run-worker.js';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => silent } as never;
const DAY = 86_400_000;

let dir: string;
let store: SqliteRunStore;
let ipfs: EmbeddedIpfsStore;
const clock = { ms: 0 };
const now = () => new Date(clock.ms);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'task-mgmt-collector-'));
  store = await SqliteRunStore.open(join(dir, 'task-mgmt.sqlite'));
  ipfs = new EmbeddedIpfsStore({ dataDir: dir });
  clock.ms = Date.parse('2026-12-01T10:00:00Z');
});

afterEach(async () => {
  await ipfs.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

function collector(overrides: { holder?: string; unpinned?: string[] } = {}): Collector {
  const unpinned = overrides.unpinned;
  return new Collector({
    store,
    // The embedded store, with the roots it is told to unpin written down (Kubo would pin/rm them).
    ipfs: { unpin: async (root) => void unpinned?.push(root), deleteBlocks: (cids) => ipfs.deleteBlocks(cids) },
    dataDir: dir,
    holder: overrides.holder ?? 'app-1',
    intervalMs: 3_600_000,
    log: silent,
    now,
  });
}

async function recordRun(overrides: Partial<NewRun> = {}, state: RunState = 'succeeded'): Promise<Run> {
  const run = await store.createRun(
    {
      id: randomUUID(),
      repo: { owner: 'octo-org', name: 'archive', installationId: 1 },
      number: 7,
      isPullRequest: true,
      sha: 'a'.repeat(40),
      task: 'default',
      taskType: 'container',
      dockerfile: 'Dockerfile',
      params: {},
      requestedBy: 'alice',
      requesterKind: 'user',
      requiredRole: 'write',
      trigger: 'comment',
      commentId: null,
      approvals: [],
      manifestDigest: '',
      spec: { with: {}, network: false },
      needs: [],
      ...overrides,
    },
    now(),
  );
  if (state === 'queued') return run;
  await store.transition(run.id, 'claim', now(), { workerId: 'w' });
  if (state === 'running') return (await store.getRun(run.id))!;
  return (await store.transition(run.id, state === 'succeeded' ? 'succeed' : state === 'failed' ? 'fail' : 'cancel', now()))!;
}

/** A run whose task wrote `files`, added and pinned for `ttlMs` as the worker does. */
async function pinnedRun(files: Record<string, Uint8Array | string>, ttlMs: number): Promise<{ run: Run; root: string; entries: { name: string; cid: string }[] }> {
  const run = await recordRun();
  const out = outputDir(dir, run.id);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(out, name, '..'), { recursive: true });
    await writeFile(join(out, name), content);
  }
  const { added } = await addAndPin({ store, ipfs, now }, { runId: run.id, kind: 'outputs', path: out, pinnedUntil: new Date(clock.ms + ttlMs) });
  return { run, root: added.cid, entries: added.entries };
}

/** Every block of the DAG below `cid`, read from the embedded store (which must hold them all). */
async function dagBlocks(cid: string): Promise<string[]> {
  const found: string[] = [];
  const stack = [CID.parse(cid)];
  while (stack.length > 0) {
    const next = stack.pop()!;
    found.push(next.toString());
    if (next.code !== dagPb.code) continue;
    const bytes = await ipfs.getBlock(next.toString());
    if (bytes === null) throw new Error(`${next} is missing`);
    stack.push(...dagPb.decode(bytes).Links.map((link) => link.Hash));
  }
  return found;
}

async function held(blocks: readonly string[]): Promise<boolean[]> {
  return Promise.all(blocks.map((block) => ipfs.has(block)));
}

describe('collecting pins', () => {
  it('a run pinned for 5 s loses its own blocks after the collections, while a file it shares with a longer-pinned run stays', async () => {
    const shared = randomBytes(600 * 1024);
    const short = await pinnedRun({ 'shared.bin': shared, 'only-short.bin': randomBytes(700 * 1024) }, 5000);
    const long = await pinnedRun({ 'shared.bin': shared, 'only-long.txt': 'kept\n' }, 30 * DAY);
    const sharedFile = short.entries.find((entry) => entry.name === 'shared.bin')!.cid;
    const longBlocks = await dagBlocks(long.root);
    const sharedBlocks = await dagBlocks(sharedFile);
    const shortOnly = (await dagBlocks(short.root)).filter((block) => !longBlocks.includes(block));
    expect(shortOnly.length).toBeGreaterThan(3);
    expect(longBlocks).toEqual(expect.arrayContaining(sharedBlocks));

    // Before the pin ends, nothing goes.
    clock.ms += 4000;
    expect(await collector().collect()).toMatchObject({ collectedPins: true, removedPins: 0, deletedBlocks: 0 });

    // The first collection after it ends removes the pin: the gateway serves none of it any more,
    // except what the longer pin holds.
    clock.ms += 2000;
    expect(await collector().collect()).toMatchObject({ removedPins: 1, releasedRoots: 1, deletedBlocks: 0 });
    for (const block of shortOnly) expect(await store.livePinsHolding(block, now())).toStrictEqual([]);
    for (const block of sharedBlocks) expect((await store.livePinsHolding(block, now())).map((h) => h.runId)).toStrictEqual([long.run.id]);
    expect((await store.getRun(short.run.id))!.pinnedUntil).toStrictEqual(new Date(clock.ms - 6000 + 5000));

    // A collection past the grace deletes its own blocks from DATA_DIR; the shared file and the other run stay whole.
    clock.ms += DEFAULT_GARBAGE_GRACE_MS;
    expect(await collector().collect()).toMatchObject({ removedPins: 0, deletedBlocks: shortOnly.length });
    expect(await held(shortOnly)).toStrictEqual(shortOnly.map(() => false));
    expect(await held(longBlocks)).toStrictEqual(longBlocks.map(() => true));
    expect(await dagBlocks(long.root)).toHaveLength(longBlocks.length);
  });

  it('tells the backend to unpin a root only when its last pin ends', async () => {
    const files = { 'a.txt': 'same outputs\n' };
    const first = await pinnedRun(files, 5000);
    const second = await pinnedRun(files, 60_000);
    expect(second.root).toBe(first.root);
    const unpinned: string[] = [];
    clock.ms += 10_000;
    expect(await collector({ unpinned }).collect()).toMatchObject({ removedPins: 1, releasedRoots: 0 });
    clock.ms += 60_000;
    expect(await collector({ unpinned }).collect()).toMatchObject({ removedPins: 1, releasedRoots: 1 });
    expect(unpinned).toStrictEqual([first.root]);
  });

  it('keeps a block an add wrote again after it was marked', async () => {
    const gone = await pinnedRun({ 'x.txt': 'comes back\n' }, 5000);
    clock.ms += 10_000;
    await collector().collect();
    // Added again (and indexed) before the grace ends: the block is held again and stays.
    const again = await pinnedRun({ 'x.txt': 'comes back\n' }, 30 * DAY);
    expect(again.root).toBe(gone.root);
    clock.ms += DEFAULT_GARBAGE_GRACE_MS;
    expect(await collector().collect()).toMatchObject({ deletedBlocks: 0 });
    expect(await held(await dagBlocks(again.root))).not.toContain(false);
  });

  it('collects pins in one replica at a time: another one waits for the lease to end', async () => {
    await pinnedRun({ 'a.txt': 'a\n' }, 5000);
    await pinnedRun({ 'b.txt': 'b\n' }, 5000);
    clock.ms += 10_000;
    const [one, two] = await Promise.all([collector({ holder: 'app-1' }).collect(), collector({ holder: 'app-2' }).collect()]);
    expect([one.collectedPins, two.collectedPins].sort()).toStrictEqual([false, true]);
    expect(one.removedPins + two.removedPins).toBe(2);
    // The holder keeps collecting once an interval; the other takes over when it stops renewing.
    clock.ms += 60_000;
    const holder = one.collectedPins ? 'app-1' : 'app-2';
    const other = one.collectedPins ? 'app-2' : 'app-1';
    expect((await collector({ holder: other }).collect()).collectedPins).toBe(false);
    expect((await collector({ holder }).collect()).collectedPins).toBe(true);
    clock.ms += 3_600_001;
    expect((await collector({ holder: other }).collect()).collectedPins).toBe(true);
  });

  it('the app collects at once when started, and gives the lease back when it stops', async () => {
    await pinnedRun({ 'a.txt': 'a\n' }, 5000);
    clock.ms += 10_000;
    const started = collector({ holder: 'app-1' });
    const running = started.start();
    await expect.poll(async () => (await store.listPins((await store.listRuns({}))[0]!.id)).length).toBe(0);
    await running.stop();
    expect(await store.takeLease('pin-collector', 'app-2', new Date(clock.ms + 1000), now())).toBe(true);
  });
});

describe('removing output folders', () => {
  it('removes the folder of a finished run once no queued or running run of its request needs it', async () => {
    const done = await pinnedRun({ 'a.txt': 'a\n' }, 30 * DAY);
    const needed = await pinnedRun({ 'b.txt': 'b\n' }, 30 * DAY);
    await recordRun({ needs: [needed.run.id] }, 'queued');
    const running = await recordRun({}, 'running');
    const failed = await recordRun({}, 'failed');
    for (const run of [running, failed]) await mkdir(outputDir(dir, run.id), { recursive: true });
    await mkdir(outputDir(dir, 'not-a-run-of-this-store'), { recursive: true });

    const collected = await collector().collect();
    expect(collected.removedOutputs.sort()).toStrictEqual([done.run.id, failed.id].sort());
    expect((await readdir(join(dir, 'outputs'))).sort()).toStrictEqual([needed.run.id, running.id, 'not-a-run-of-this-store'].sort());
    // The pinned outputs stay on IPFS: only the working copy goes.
    expect(await ipfs.has(done.root)).toBe(true);
  });

  it('cleans this process’s folders even when another replica collects the pins', async () => {
    const done = await pinnedRun({ 'a.txt': 'a\n' }, 30 * DAY);
    expect(await store.takeLease('pin-collector', 'elsewhere', new Date(clock.ms + 3_600_000), now())).toBe(true);
    expect(await collector().collect()).toMatchObject({ collectedPins: false, removedOutputs: [done.run.id] });
  });
});
