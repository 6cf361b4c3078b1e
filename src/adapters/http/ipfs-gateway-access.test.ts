/**
 * Gateway access over the real run store (SQLite, its pin index) and the real run service's reads,
 * with a code host per repository: live pins decide what exists, GitHub's reads decide for whom.
 */
import * as dagPb from '@ipld/dag-pb';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { at, newRun } from '../../../test/contracts/run-store.contract.js';
import type { TaskTypeCatalog } from '../../core/manifest/load-manifest.js';
import { RunService } from '../../core/run-service/run-service.js';
import type { RepoRef } from '../../core/runs/run.js';
import { RetryableError } from '../../ports/errors.js';
import { MemoryCheckReporter } from '../local/memory-check-reporter.js';
import { MemoryRepoHost } from '../local/memory-repo-host.js';
import { EmbeddedRunQueue } from '../queue/embedded-run-queue.js';
import { SqliteRunStore } from '../store/sqlite-run-store.js';
import pino from 'pino';
import { pinnedAccess } from './ipfs-gateway-access.js';
import type { ApiActor } from './http-io.js';
import type { GatewayAccess } from './ipfs-gateway.js';

const open: RepoRef = { owner: 'octo-org', name: 'open', installationId: 7 };
const secret: RepoRef = { owner: 'octo-org', name: 'secret', installationId: 7 };
const anyone = null;
const user = (name: string): ApiActor => ({ kind: 'user', name });
const service: ApiActor = { kind: 'service', name: 'service:0123456789ab' };

async function dagPbCid(text: string): Promise<CID> {
  return CID.createV0(await sha256.digest(dagPb.encode({ Data: new TextEncoder().encode(text), Links: [] })));
}
async function rawCid(text: string): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(text)));
}

describe('pinnedAccess', () => {
  let store: SqliteRunStore;
  let hosts: Map<string, MemoryRepoHost>;
  let now: Date;
  let access: GatewayAccess;

  beforeEach(async () => {
    store = await SqliteRunStore.open(':memory:');
    now = at(10);
    hosts = new Map([
      [open.name, new MemoryRepoHost().setVisibility('public')],
      [secret.name, new MemoryRepoHost().setRole('reader', 'read')],
    ]);
    const hostFor = async (repo: RepoRef) => hosts.get(repo.name)!;
    const reads = new RunService({
      store,
      queue: new EmbeddedRunQueue({ store, log: pino({ level: 'silent' }) }),
      checks: new MemoryCheckReporter(),
      hostFor,
      newId: () => 'unused',
      now: () => now,
      gatewayUrl: 'https://gateway.example',
      commandsPerMinute: 100,
      taskTypes: new Map() as unknown as TaskTypeCatalog,
      defaultImage: 'busybox:latest',
    });
    access = pinnedAccess({ pins: store, reads, visibility: async (repo) => (await hostFor(repo)).getVisibility(), now: () => now });
  });

  afterEach(async () => {
    await store.close();
  });

  /** A run of `repo` whose outputs pin `blocks` (the first is the root) until `until`. */
  async function pin(repo: RepoRef, blocks: CID[], until: Date): Promise<void> {
    const run = await store.createRun(newRun({ repo }), at(0));
    await store.startPin({ runId: run.id, kind: 'outputs', pinnedUntil: until }, at(0));
    await store.indexPinBlocks({ runId: run.id, kind: 'outputs' }, blocks.map(String));
    await store.completePin({ runId: run.id, kind: 'outputs', root: blocks[0]!.toString() }, at(1));
  }

  it('outputs of a public repository: to anyone, token or not, any block below the root', async () => {
    const [root, leaf] = [await dagPbCid('root'), await rawCid('leaf')];
    await pin(open, [root, leaf], at(100));
    expect(await access(root, anyone)).toBe('public');
    expect(await access(leaf, anyone)).toBe('public');
    expect(await access(leaf, user('stranger'))).toBe('public');
  });

  it('outputs of a private repository: only to those who may read it, answered privately', async () => {
    const root = await dagPbCid('secret root');
    await pin(secret, [root], at(100));
    expect(await access(root, anyone)).toBe('not-found');
    expect(await access(root, user('stranger'))).toBe('not-found');
    expect(await access(root, user('reader'))).toBe('restricted');
    expect(await access(root, service)).toBe('restricted');
  });

  it('nothing once the pin has ended, nor what was never pinned', async () => {
    const root = await dagPbCid('short-lived');
    await pin(open, [root], at(20));
    expect(await access(root, service)).toBe('public');
    now = at(20);
    expect(await access(root, service)).toBe('not-found');
    expect(await access(await dagPbCid('never pinned'), service)).toBe('not-found');
  });

  it('a block a private and a public run share is public', async () => {
    const shared = await rawCid('shared');
    await pin(secret, [await dagPbCid('a'), shared], at(100));
    await pin(open, [await dagPbCid('b'), shared], at(100));
    expect(await access(shared, anyone)).toBe('public');
  });

  it('finds a CIDv0 node asked for by its CIDv1', async () => {
    const root = await dagPbCid('v0 root');
    await pin(open, [root], at(100));
    expect(await access(root.toV1(), anyone)).toBe('public');
  });

  it('asks GitHub for a visibility once a minute at most', async () => {
    const [a, b] = [await dagPbCid('one'), await dagPbCid('two')];
    await pin(open, [a], at(100));
    await pin(open, [b], at(100));
    const visibility = () => hosts.get(open.name)!.calls.filter((call) => call.what === 'getVisibility').length;
    await access(a, anyone);
    await access(b, anyone);
    expect(visibility()).toBe(1);
    now = at(71);
    await access(a, anyone);
    expect(visibility()).toBe(2);
  });

  it('fails when GitHub does not answer, instead of answering "not found"; any other failure hides the output', async () => {
    const root = await dagPbCid('unsure');
    await pin(secret, [root], at(100));
    hosts.get(secret.name)!.failNext('getVisibility', new RetryableError('GitHub did not answer'));
    await expect(access(root, anyone)).rejects.toThrow('GitHub did not answer');
    hosts.get(secret.name)!.failNext('getVisibility', Object.assign(new Error('Not Found'), { status: 404 }));
    expect(await access(root, anyone)).toBe('not-found');
  });
});
