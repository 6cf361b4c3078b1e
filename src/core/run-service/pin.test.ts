/**
 * Pins through the run service: `/pin`, the API's pin and a manifest's `pin.ttl`, on in-memory
 * adapters (a code host in memory, SQLite in memory, a check reporter in memory), with the clock
 * in the test's hand.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCheckReporter } from '../../adapters/local/memory-check-reporter.js';
import { MemoryRepoHost } from '../../adapters/local/memory-repo-host.js';
import { EmbeddedRunQueue } from '../../adapters/queue/embedded-run-queue.js';
import { SqliteRunStore } from '../../adapters/store/sqlite-run-store.js';
import type { TaskTypeCatalog } from '../manifest/load-manifest.js';
import { readManifestYamlOffThread } from '../manifest/manifest-yaml-pool.js';
import type { RepoRef, Requester, Run } from '../runs/run.js';
import { RunService, type RequestOutcome } from './run-service.js';

const DAY = 86_400_000;
const repo: RepoRef = { owner: 'octo-org', name: 'archive', installationId: 7 };
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => silent } as never;
const user = (login: string): Requester => ({ kind: 'user', login });
const dockerfile = { Dockerfile: 'FROM busybox\nCMD ["true"]\n' };

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function world(files: Record<string, string> = dockerfile) {
  const host = new MemoryRepoHost();
  for (const [login, role] of Object.entries({ alice: 'write', rita: 'read' } as const)) host.setRole(login, role);
  const store = await SqliteRunStore.open(':memory:');
  const queue = new EmbeddedRunQueue({ store, log: silent });
  const checks = new MemoryCheckReporter();
  let next = 0;
  const clock = { ms: Date.parse('2026-12-01T10:00:00Z') };
  const now = () => new Date(clock.ms);
  const runs = new RunService({
    store,
    queue,
    checks,
    hostFor: async () => host,
    newId: () => `run-${++next}`,
    now,
    gatewayUrl: 'https://gateway.example',
    commandsPerMinute: 100,
    taskTypes: new Map() as unknown as TaskTypeCatalog,
    defaultImage: 'busybox:latest',
    pinTtl: { defaultMs: 30 * DAY, maxMs: 365 * DAY },
  });
  closers.push(async () => {
    await queue.close();
    await store.close();
  });
  host.setDefaultHead(host.commit(files));

  /** A run asked for on issue 3, taken by a worker that adds its outputs under a pin of `ttlMs`, then ended `state`. */
  const finishedRun = async (state: 'succeeded' | 'failed' = 'succeeded', ttlMs = 30 * DAY): Promise<Run> => {
    const [run] = queued(await runs.request({ requester: user('alice'), repo, target: { kind: 'issue', number: 3 }, task: null, params: {}, trigger: 'comment' }));
    await store.transition(run!.id, 'claim', now(), { workerId: 'w' });
    await store.startPin({ runId: run!.id, kind: 'outputs', pinnedUntil: new Date(clock.ms + ttlMs) }, now());
    await store.indexPinBlocks({ runId: run!.id, kind: 'outputs' }, [`leaf-of-${run!.id}`]);
    await store.completePin({ runId: run!.id, kind: 'outputs', root: `root-of-${run!.id}` }, now());
    return (await store.transition(run!.id, state === 'succeeded' ? 'succeed' : 'fail', now(), { outputCid: `root-of-${run!.id}` }))!;
  };
  return { host, store, checks, runs, clock, now, finishedRun };
}

function queued(outcome: RequestOutcome): Run[] {
  if (outcome.kind !== 'queued') throw new Error(`expected queued, got ${outcome.kind}: ${'reason' in outcome ? outcome.reason : ''}`);
  return outcome.runs;
}

describe('pin TTLs of a request', () => {
  // The manifest reader's thread starts once per process, in seconds on a loaded machine; its
  // deadline is for reading a manifest, not for that start.
  beforeAll(() => readManifestYamlOffThread('version: 1', 60_000), 60_000);

  it('records the manifest’s pin.ttl with the run, or PIN_TTL_DEFAULT when it names none', async () => {
    const w = await world();
    const [plain] = queued(await w.runs.request({ requester: user('alice'), repo, target: { kind: 'issue', number: 1 }, task: null, params: {}, trigger: 'comment' }));
    expect(plain!.spec.pinTtlMs).toBe(30 * DAY);
    w.host.setDefaultHead(w.host.commit({ ...dockerfile, 'task-mgmt.yml': 'version: 1\npin: { ttl: 5s }\ntasks:\n  default:\n    dockerfile: Dockerfile\n' }));
    const [short] = queued(await w.runs.request({ requester: user('alice'), repo, target: { kind: 'issue', number: 1 }, task: null, params: {}, trigger: 'comment' }));
    expect(short!.spec.pinTtlMs).toBe(5000);
  });

  it('refuses a manifest asking to pin longer than PIN_TTL_MAX, naming the cap, and queues nothing', async () => {
    const w = await world({ ...dockerfile, 'task-mgmt.yml': 'version: 1\npin: { ttl: 400d }\ntasks:\n  default:\n    dockerfile: Dockerfile\n' });
    expect(await w.runs.request({ requester: user('alice'), repo, target: { kind: 'issue', number: 1 }, task: null, params: {}, trigger: 'comment' })).toEqual({
      kind: 'refused',
      code: 'not_runnable',
      reason: '`pin.ttl` in `task-mgmt.yml` asks for 400 d, and this deployment pins outputs for at most 365 d (PIN_TTL_MAX).',
    });
    expect(await w.store.listQueued(10)).toEqual([]);
  });
});

describe('/pin', () => {
  it('keeps a run’s outputs pinned until now + the duration, updates its check run and records who did it', async () => {
    const w = await world();
    const run = await w.finishedRun();
    expect(run.pinnedUntil).toStrictEqual(new Date(w.clock.ms + 30 * DAY));
    w.clock.ms += DAY;
    const outcome = await w.runs.pin({ requester: user('alice'), repo, number: 3, runId: run.id, durationMs: 90 * DAY });
    const until = new Date(w.clock.ms + 90 * DAY);
    expect(outcome).toMatchObject({ kind: 'pinned', pinnedUntil: until, extended: true, run: { id: run.id, pinnedUntil: until } });
    expect(await w.store.listPins(run.id)).toStrictEqual([{ runId: run.id, kind: 'outputs', root: `root-of-${run.id}`, pinnedUntil: until }]);
    expect(w.checks.get(run.checkRunId!)!.current.summary).toContain(`Pinned until ${until.toISOString().slice(0, 16).replace('T', ' ')} UTC`);
    const audit = (await w.store.listAudit('octo-org/archive')).filter((entry) => entry.runId === run.id && entry.action === 'pin');
    expect(audit).toMatchObject([{ actor: 'alice', allowed: true, number: 3, reason: expect.stringContaining(`pinned ${run.id} until ${until.toISOString()}`) }]);
  });

  it('never shortens a pin: asking for less than is left changes nothing, and says so', async () => {
    const w = await world();
    const run = await w.finishedRun();
    const outcome = await w.runs.pin({ requester: user('alice'), repo, runId: run.id, durationMs: 7 * DAY });
    expect(outcome).toMatchObject({ kind: 'pinned', extended: false, pinnedUntil: run.pinnedUntil });
  });

  it('keeps the outputs of a failed run too', async () => {
    const w = await world();
    const run = await w.finishedRun('failed');
    expect(await w.runs.pin({ requester: user('alice'), repo, runId: run.id, durationMs: 60 * DAY })).toMatchObject({ kind: 'pinned', extended: true });
  });

  it('refuses past PIN_TTL_MAX, naming the cap, before anything changes', async () => {
    const w = await world();
    const run = await w.finishedRun();
    expect(await w.runs.pin({ requester: user('alice'), repo, runId: run.id, durationMs: 366 * DAY })).toEqual({
      kind: 'refused',
      code: 'params',
      reason: '`/pin` asks for 366 d, and this deployment pins outputs for at most 365 d (PIN_TTL_MAX).',
    });
    expect((await w.store.getRun(run.id))!.pinnedUntil).toStrictEqual(run.pinnedUntil);
  });

  it('refuses a reader in words about pinning, and records the refusal', async () => {
    const w = await world();
    const run = await w.finishedRun();
    expect(await w.runs.pin({ requester: user('rita'), repo, runId: run.id, durationMs: 60 * DAY })).toEqual({
      kind: 'refused',
      code: 'role',
      reason: '@rita has the read role on this repository; keeping outputs pinned needs write or higher.',
    });
    expect((await w.store.listAudit('octo-org/archive')).filter((e) => e.action === 'pin')).toMatchObject([{ actor: 'rita', allowed: false }]);
  });

  it('says why there is nothing to pin: unknown here, not finished, nothing added, or collected', async () => {
    const w = await world();
    expect(await w.runs.pin({ requester: user('alice'), repo, runId: 'nope', durationMs: DAY })).toMatchObject({ kind: 'refused', code: 'not_found', reason: 'there is no run `nope` in this repository.' });
    expect(await w.runs.pin({ requester: user('alice'), repo: { ...repo, name: 'other' }, runId: (await w.finishedRun()).id, durationMs: DAY })).toMatchObject({ code: 'not_found' });

    const [queuedRun] = queued(await w.runs.request({ requester: user('alice'), repo, target: { kind: 'issue', number: 3 }, task: null, params: {}, trigger: 'comment' }));
    expect(await w.runs.pin({ requester: user('alice'), repo, runId: queuedRun!.id, durationMs: DAY })).toMatchObject({
      code: 'nothing_to_do',
      reason: `run \`${queuedRun!.id}\` has not finished; its outputs are pinned once they are added.`,
    });
    await w.runs.cancel({ requester: user('alice'), repo, scope: { kind: 'run', runId: queuedRun!.id } });
    expect(await w.runs.pin({ requester: user('alice'), repo, runId: queuedRun!.id, durationMs: DAY })).toMatchObject({
      reason: `run \`${queuedRun!.id}\` has no outputs to pin: it ended cancelled before adding any.`,
    });

    const short = await w.finishedRun('succeeded', 5000);
    w.clock.ms += 10_000;
    await w.store.removeExpiredPins(w.now(), 100);
    expect(await w.runs.pin({ requester: user('alice'), repo, runId: short.id, durationMs: DAY })).toMatchObject({
      code: 'nothing_to_do',
      reason: `the pin of run \`${short.id}\` ended on 2026-12-01 and its outputs were collected; run the task again to make them anew.`,
    });
  });

  it('by run id alone (the API): a stranger is told a private repository’s run does not exist', async () => {
    const w = await world();
    const run = await w.finishedRun();
    expect(await w.runs.pin({ requester: user('stranger'), runId: run.id, durationMs: DAY })).toEqual({ kind: 'refused', code: 'not_found', reason: `there is no run \`${run.id}\`.` });
    const service: Requester = { kind: 'service', login: 'service:abc' };
    expect(await w.runs.pin({ requester: service, runId: run.id, durationMs: 60 * DAY })).toMatchObject({ kind: 'pinned', extended: true });
  });
});
