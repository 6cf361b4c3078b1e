/**
 * The app is a gateway for what it pinned, end to end on real parts: outputs added under a pin the
 * way the worker adds them (addAndPin: the embedded store reports each block, the SQLite run store
 * indexes it), served by the app's HTTP surface (createHttpApi) with the run service's reads and a
 * code host per repository. What one asks for is what a check run links to: the root and the files.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CarReader } from '@ipld/car';
import { sha256 } from 'multiformats/hashes/sha2';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { at, newRun } from '../../../test/contracts/run-store.contract.js';
import type { TaskTypeCatalog } from '../../core/manifest/load-manifest.js';
import { addAndPin } from '../../core/pins/add-and-pin.js';
import { RunService } from '../../core/run-service/run-service.js';
import type { RepoRef } from '../../core/runs/run.js';
import type { AddResult } from '../../ports/ipfs-store.js';
import { EmbeddedIpfsStore } from '../ipfs/embedded-ipfs-store.js';
import { MemoryCheckReporter } from '../local/memory-check-reporter.js';
import { MemoryRepoHost } from '../local/memory-repo-host.js';
import { EmbeddedRunQueue } from '../queue/embedded-run-queue.js';
import { SqliteRunStore } from '../store/sqlite-run-store.js';
import { createHttpApi } from './http-api.js';
import { pinnedAccess } from './ipfs-gateway-access.js';
import { RunRequests } from './run-requests.js';

const open: RepoRef = { owner: 'octo-org', name: 'open', installationId: 7 };
const secret: RepoRef = { owner: 'octo-org', name: 'secret', installationId: 7 };
const silent = pino({ level: 'silent' });

describe('the app serves what its runs pinned', () => {
  let dir: string;
  let store: SqliteRunStore;
  let ipfs: EmbeddedIpfsStore;
  let server: Server;
  let base: string;
  let now: Date;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gateway-pins-'));
    store = await SqliteRunStore.open(':memory:');
    ipfs = new EmbeddedIpfsStore({ dataDir: join(dir, 'data'), profile: { profile: 'unixfs-v1-2025' } });
    now = at(10);
    const hosts = new Map([
      [open.name, new MemoryRepoHost().setVisibility('public')],
      [secret.name, new MemoryRepoHost().setRole('reader', 'read')],
    ]);
    const hostFor = async (repo: RepoRef) => hosts.get(repo.name)!;
    const runs = new RunService({
      store,
      queue: new EmbeddedRunQueue({ store, log: silent }),
      checks: new MemoryCheckReporter(),
      hostFor,
      newId: () => 'unused',
      now: () => now,
      gatewayUrl: 'https://gateway.example',
      commandsPerMinute: 100,
      taskTypes: new Map() as unknown as TaskTypeCatalog,
      defaultImage: 'busybox:latest',
    });
    const deps = {
      store,
      tokens: ['service-token-for-gateway-tests'],
      runs: new RunRequests({ runs, installationOf: async () => 7 }),
      reads: runs,
      resolveUser: async (token: string) => (token.startsWith('user-') ? token.slice('user-'.length) : null),
      logDir: join(dir, 'logs'),
      log: silent,
      gateway: { blocks: ipfs, access: pinnedAccess({ pins: store, reads: runs, visibility: async (repo) => (await hostFor(repo)).getVisibility(), now: () => now }) },
    };
    const handler = createHttpApi(deps);
    server = createServer((req, res) => {
      void handler(req, res).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve));
    await ipfs.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A run of `repo` whose task wrote `files` to /out, added and pinned until `until` as the worker does. */
  async function outputsOf(repo: RepoRef, files: Record<string, string>, until: Date): Promise<AddResult> {
    const run = await store.createRun(newRun({ repo }), at(0));
    const out = join(dir, run.id);
    await mkdir(out, { recursive: true });
    for (const [name, content] of Object.entries(files)) await writeFile(join(out, name), content);
    const { added } = await addAndPin({ store, ipfs, now: () => at(1) }, { runId: run.id, kind: 'outputs', path: out, pinnedUntil: until });
    return added;
  }

  it("a public repository's outputs, to anyone: the folder, each file, a CAR of every block", async () => {
    const added = await outputsOf(open, { 'report.txt': 'all good\n', 'data.csv': 'a,b\n1,2\n' }, at(100));
    expect(await (await fetch(`${base}/ipfs/${added.cid}/report.txt`)).text()).toBe('all good\n');
    for (const entry of added.entries) expect((await fetch(`${base}/ipfs/${entry.cid}`)).status).toBe(200);
    const car = await CarReader.fromBytes(new Uint8Array(await (await fetch(`${base}/ipfs/${added.cid}?format=car`)).arrayBuffer()));
    const cids: string[] = [];
    for await (const block of car.blocks()) {
      expect(Buffer.from((await sha256.digest(block.bytes)).bytes).equals(Buffer.from(block.cid.multihash.bytes))).toBe(true);
      cids.push(block.cid.toString());
    }
    expect(cids).toContain(added.cid);
    for (const entry of added.entries) expect(cids).toContain(entry.cid);
  });

  it("a private repository's outputs, only to a token that may read it", async () => {
    const added = await outputsOf(secret, { 'private.txt': 'for readers\n' }, at(100));
    const url = `${base}/ipfs/${added.cid}/private.txt`;
    expect((await fetch(url)).status).toBe(404);
    expect((await fetch(url, { headers: { authorization: 'Bearer user-stranger' } })).status).toBe(404);
    const reader = await fetch(url, { headers: { authorization: 'Bearer user-reader' } });
    expect(reader.status).toBe(200);
    expect(await reader.text()).toBe('for readers\n');
    expect(reader.headers.get('cache-control')).toBe('private, max-age=29030400, immutable');
  });

  it('nothing once the pin has ended', async () => {
    const added = await outputsOf(open, { 'brief.txt': 'soon gone\n' }, at(30));
    expect((await fetch(`${base}/ipfs/${added.cid}/brief.txt`)).status).toBe(200);
    now = at(30);
    expect((await fetch(`${base}/ipfs/${added.cid}/brief.txt`)).status).toBe(404);
  });
});
