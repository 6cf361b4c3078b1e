/**
 * A pipeline whose two tasks run on two workers that share the run store but not a DATA_DIR, on
 * real parts: the worker's use case twice (createRunHandler), the app's HTTP surface with its
 * gateway over the app's embedded store, a SQLite run store, and the fake Kubo. The second worker
 * gets the first's outputs by CID from the app's gateway (or from Kubo), verified; a block spoiled
 * in the app's store fails the second task in one line. Private repositories' outputs never reach
 * Kubo unless IPFS_PUBLISH_PRIVATE is set.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openServices } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createHttpApi } from '../../src/adapters/http/http-api.js';
import { pinnedAccess } from '../../src/adapters/http/ipfs-gateway-access.js';
import { RunRequests } from '../../src/adapters/http/run-requests.js';
import { EmbeddedIpfsStore } from '../../src/adapters/ipfs/embedded-ipfs-store.js';
import { KuboIpfsStore } from '../../src/adapters/ipfs/kubo-ipfs-store.js';
import { firstHolding } from '../../src/adapters/ipfs/layered-ipfs.js';
import { VerifiedOutputFetcher } from '../../src/adapters/ipfs/verified-output-fetcher.js';
import { MemoryCheckReporter } from '../../src/adapters/local/memory-check-reporter.js';
import { MemoryRepoHost } from '../../src/adapters/local/memory-repo-host.js';
import { EmbeddedRunQueue } from '../../src/adapters/queue/embedded-run-queue.js';
import { SqliteRunStore } from '../../src/adapters/store/sqlite-run-store.js';
import type { TaskTypeCatalog } from '../../src/core/manifest/load-manifest.js';
import { queuedReport } from '../../src/core/runs/check-text.js';
import { RunService } from '../../src/core/run-service/run-service.js';
import type { RepoRef, Run } from '../../src/core/runs/run.js';
import type { Executor } from '../../src/ports/executor.js';
import type { IpfsBlockReader, IpfsBlockWriter, IpfsStore } from '../../src/ports/ipfs-store.js';
import type { OutputFetcher } from '../../src/ports/output-fetcher.js';
import type { AnyTaskType } from '../../src/ports/task-type.js';
import { createRunHandler } from '../../src/worker/run-worker.js';
import { FakeKubo } from '../fake-kubo/fake-kubo.js';
import { newRun } from '../contracts/run-store.contract.js';

const token = 'worker-token-for-pipeline-tests-01';
const open: RepoRef = { owner: 'octo-org', name: 'open', installationId: 7 };
const secret: RepoRef = { owner: 'octo-org', name: 'secret', installationId: 7 };
const silent = pino({ level: 'silent' });
const noContainers: Executor = {
  execute: async () => {
    throw new Error('no task type here starts a container');
  },
};

/** `fetch` writes two files; `count` reads what it needs at /in/fetch and writes what it found. */
const taskTypes = new Map<string, AnyTaskType>([
  [
    'test/write',
    {
      name: 'test/write',
      description: 'writes two files',
      params: z.object({}).passthrough(),
      network: false,
      run: async (ctx) => {
        await writeFile(join(ctx.outDir, 'data.txt'), 'hello world\n');
        await writeFile(join(ctx.outDir, 'more.txt'), 'x'.repeat(300 * 1024));
        return {};
      },
    },
  ],
  [
    'test/count',
    {
      name: 'test/count',
      description: 'counts the bytes of what it needs',
      params: z.object({}).passthrough(),
      network: false,
      run: async (ctx) => {
        const input = ctx.inputs.fetch!;
        const names = (await readdir(input.dir)).sort();
        const sizes = await Promise.all(names.map(async (name) => `${name} ${(await readFile(join(input.dir, name))).byteLength}`));
        await writeFile(join(ctx.outDir, 'count.txt'), `${sizes.join('\n')}\n`);
        return {};
      },
    },
  ],
]);

describe('a pipeline whose tasks run on workers with different DATA_DIRs', () => {
  let dir: string;
  let store: SqliteRunStore;
  let appIpfs: EmbeddedIpfsStore;
  let server: Server;
  let base: string;
  let checks: MemoryCheckReporter;
  let hosts: Map<string, MemoryRepoHost>;
  /** The app's gateway reads these: its embedded store, and Kubo too when a test publishes there. */
  let gatewayBlocks: IpfsBlockReader;
  const closing: Array<() => Promise<unknown>> = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pipeline-workers-'));
    store = await SqliteRunStore.open(':memory:');
    appIpfs = new EmbeddedIpfsStore({ dataDir: join(dir, 'app') });
    gatewayBlocks = appIpfs;
    checks = new MemoryCheckReporter();
    hosts = new Map([
      [open.name, new MemoryRepoHost().setVisibility('public').setRole('alice', 'write')],
      [secret.name, new MemoryRepoHost().setVisibility('private').setRole('alice', 'write')],
    ]);
    const hostFor = async (repo: RepoRef) => hosts.get(repo.name)!;
    const runs = new RunService({
      store,
      queue: new EmbeddedRunQueue({ store, log: silent }),
      checks,
      hostFor,
      newId: () => 'unused',
      now: () => new Date(),
      gatewayUrl: 'https://gateway.example',
      commandsPerMinute: 100,
      taskTypes: new Map() as unknown as TaskTypeCatalog,
      defaultImage: 'busybox:latest',
    });
    const handler = createHttpApi({
      store,
      tokens: [token],
      runs: new RunRequests({ runs, installationOf: async () => 7 }),
      reads: runs,
      log: silent,
      gateway: {
        blocks: { getBlock: (cid, options) => gatewayBlocks.getBlock(cid, options) },
        access: pinnedAccess({ pins: store, reads: runs, visibility: async (repo) => (await hostFor(repo)).getVisibility(), now: () => new Date() }),
      },
    });
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
    for (const close of closing.splice(0).reverse()) await close();
    await appIpfs.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A worker of its own DATA_DIR, on the shared run store. */
  function worker(name: string, parts: { ipfs: IpfsStore & IpfsBlockWriter; privateIpfs?: IpfsStore & IpfsBlockWriter; outputs?: OutputFetcher }) {
    const handle = createRunHandler({
      store,
      hostFor: async (repo) => hosts.get(repo.name)!,
      maxRunningPerRepo: 2,
      checks,
      source: { fetch: async () => undefined },
      executor: noContainers,
      ...parts,
      taskTypes,
      settings: { allowPrivateAddresses: false, gatewayUrl: 'https://gateway.example' },
      log: silent,
      dataDir: join(dir, name),
      gatewayUrl: 'https://gateway.example',
      limits: { memoryBytes: 256 * 1024 ** 2, nanoCpus: 1e9, pidsLimit: 64, timeoutMs: 20_000 },
      workerId: name,
      leaseMs: 5000,
    });
    return (run: Run) => handle({ runId: run.id }, { signal: new AbortController().signal });
  }

  function fetcherFor(more: { token?: string; node?: { blocks: IpfsBlockReader; name: string } } = {}): OutputFetcher {
    return new VerifiedOutputFetcher({ appUrl: base, ...more });
  }

  /** fetch, then count which needs it, queued as the run service records them. */
  async function pipeline(repo: RepoRef): Promise<{ first: Run; second: Run }> {
    const common = { repo, number: 1, isPullRequest: false, requestedBy: 'alice', requiredRole: 'write' as const, spec: { with: {}, network: false } };
    const firstDraft = newRun({ ...common, task: 'fetch', taskType: 'test/write', needs: [] });
    const first = await store.createRun({ ...firstDraft, checkRunId: await checks.create(firstDraft, queuedReport(firstDraft)) }, new Date());
    const secondDraft = newRun({ ...common, task: 'count', taskType: 'test/count', needs: [first.id] });
    const second = await store.createRun({ ...secondDraft, checkRunId: await checks.create(secondDraft, queuedReport(secondDraft)) }, new Date());
    return { first, second };
  }

  async function logOf(id: string): Promise<string> {
    let text = '';
    for (let offset = 0; ; ) {
      const read = await store.readLog(id, offset);
      if (read.bytes.byteLength === 0) return text;
      text += Buffer.from(read.bytes).toString('utf8');
      offset = read.offset + read.bytes.byteLength;
    }
  }

  const count = 'data.txt 12\nmore.txt 307200\n';

  it("the second worker gets the first's outputs from the app's gateway, verified, and its result is right", async () => {
    const { first, second } = await pipeline(open);
    await worker('a', { ipfs: appIpfs })(first);
    expect((await store.getRun(first.id))!.state).toBe('succeeded');

    const otherIpfs = new EmbeddedIpfsStore({ dataDir: join(dir, 'b') });
    closing.push(() => otherIpfs.close());
    await worker('b', { ipfs: otherIpfs, outputs: fetcherFor() })(second);

    const done = (await store.getRun(second.id))!;
    expect(done).toMatchObject({ state: 'succeeded', error: null });
    expect(await readFile(join(dir, 'b', 'outputs', second.id, 'count.txt'), 'utf8')).toBe(count);
    const ran = await store.getRun(first.id);
    expect(await logOf(second.id)).toContain(`task-mgmt: fetched the outputs of \`fetch\` (${ran!.outputCid}), every block checked against its CID`);
  });

  it("a private repository's outputs need the worker token; without it the run fails saying so", async () => {
    const { first, second } = await pipeline(secret);
    await worker('a', { ipfs: appIpfs })(first);
    const cid = (await store.getRun(first.id))!.outputCid!;
    const otherIpfs = new EmbeddedIpfsStore({ dataDir: join(dir, 'b') });
    closing.push(() => otherIpfs.close());

    await worker('b', { ipfs: otherIpfs, outputs: fetcherFor() })(second);
    const refused = (await store.getRun(second.id))!;
    expect(refused.state).toBe('failed');
    expect(refused.error).toBe(
      `the outputs of \`fetch\` (${cid}) could not be fetched: the app's gateway at ${base}/ipfs/${cid} answered 404 (/ipfs/${cid} is not found here (this gateway serves only pinned outputs the caller may read)): it holds no live pin of ${cid}, or the outputs are a private repository's and this worker has no WORKER_TOKEN`,
    );

    const again = await pipeline(secret);
    await worker('a', { ipfs: appIpfs })(again.first);
    await worker('c', { ipfs: otherIpfs, outputs: fetcherFor({ token }) })(again.second);
    expect((await store.getRun(again.second.id))!.state).toBe('succeeded');
    expect(await readFile(join(dir, 'c', 'outputs', again.second.id, 'count.txt'), 'utf8')).toBe(count);
  });

  it('a block spoiled in the app’s store fails the second task in one line naming the task and the CID', async () => {
    const { first, second } = await pipeline(open);
    await worker('a', { ipfs: appIpfs })(first);
    const ran = (await store.getRun(first.id))!;
    const leaf = ran.outputFiles.find((file) => file.name === 'data.txt')!.cid;
    // The store's pack holding that block, rewritten in place as a failing disk or a hostile hand would.
    const block = Buffer.from((await appIpfs.getBlock(leaf))!);
    const packFile = await findFile(join(dir, 'app', 'ipfs', 'packs'), block);
    const spoiled = await readFile(packFile);
    const at = spoiled.indexOf(block) + block.length - 3;
    spoiled.writeUInt8(spoiled.readUInt8(at) ^ 0xff, at);
    await writeFile(packFile, spoiled);

    const otherIpfs = new EmbeddedIpfsStore({ dataDir: join(dir, 'b') });
    closing.push(() => otherIpfs.close());
    await worker('b', { ipfs: otherIpfs, outputs: fetcherFor() })(second);
    const failed = (await store.getRun(second.id))!;
    expect(failed.state).toBe('failed');
    expect(failed.error).toBe(`the outputs of \`fetch\` (${ran.outputCid}) could not be fetched: block ${leaf} from the app's gateway at ${base}/ipfs/${ran.outputCid} does not match its CID`);
    expect(await readdir(join(dir, 'b', 'outputs')).catch(() => [])).not.toContain(first.id);
  });

  describe('with Kubo', () => {
    let kubo: FakeKubo;

    beforeEach(async () => {
      kubo = await FakeKubo.start();
      closing.push(() => kubo.close());
    });

    /** What `openServices` builds for IPFS_API_URL: Kubo, and unless IPFS_PUBLISH_PRIVATE the embedded store beside it. */
    function stores(name: string, publishPrivate: boolean): { ipfs: KuboIpfsStore; privateIpfs?: EmbeddedIpfsStore } {
      const ipfs = new KuboIpfsStore({ apiUrl: kubo.url });
      if (publishPrivate) return { ipfs };
      const privateIpfs = name === 'a' ? appIpfs : new EmbeddedIpfsStore({ dataDir: join(dir, name) });
      if (privateIpfs !== appIpfs) closing.push(() => privateIpfs.close());
      return { ipfs, privateIpfs };
    }

    const sentToKubo = () => kubo.requests.filter((request) => ['dag/import', 'pin/add', 'block/put'].includes(request.command));

    it("a private repository's run sends nothing to Kubo and says so; the second worker gets the outputs from the app's gateway", async () => {
      const a = stores('a', false);
      gatewayBlocks = firstHolding([a.privateIpfs!, a.ipfs]);
      const { first, second } = await pipeline(secret);
      await worker('a', a)(first);
      const ran = (await store.getRun(first.id))!;
      expect(ran.state).toBe('succeeded');
      expect(sentToKubo()).toEqual([]);
      expect(kubo.blockCount).toBe(0);
      expect(await appIpfs.getBlock(ran.outputCid!)).not.toBeNull();
      expect(await logOf(first.id)).toContain(
        "task-mgmt: octo-org/secret is private, so its outputs are not sent to Kubo (IPFS_PUBLISH_PRIVATE is off): they stay in this deployment's own store, served by the app's gateway to those who may read the run",
      );
      expect(checks.get(ran.checkRunId!)!.history.at(-1)!.text).toContain('are not sent to Kubo');

      const b = stores('b', false);
      await worker('b', { ...b, outputs: fetcherFor({ token, node: { blocks: b.ipfs, name: `Kubo at ${kubo.url}` } }) })(second);
      expect((await store.getRun(second.id))!.state).toBe('succeeded');
      expect(await readFile(join(dir, 'b', 'outputs', second.id, 'count.txt'), 'utf8')).toBe(count);
      expect(sentToKubo()).toEqual([]);
      // Not even asked for: the outputs were never published, so the second worker went to the app.
      expect(kubo.requests.filter((request) => request.command === 'block/get')).toEqual([]);
    });

    it('with IPFS_PUBLISH_PRIVATE=true a private repository is published, and the second worker reads Kubo', async () => {
      const { first, second } = await pipeline(secret);
      await worker('a', stores('a', true))(first);
      const ran = (await store.getRun(first.id))!;
      expect(ran.state).toBe('succeeded');
      expect(kubo.pins().map((pin) => pin.cid.toString())).toContain(ran.outputCid);
      expect(await appIpfs.getBlock(ran.outputCid!)).toBeNull();

      const b = stores('b', true);
      const before = kubo.requests.length;
      await worker('b', { ...b, outputs: fetcherFor({ node: { blocks: b.ipfs, name: `Kubo at ${kubo.url}` } }) })(second);
      expect((await store.getRun(second.id))!.state).toBe('succeeded');
      expect(await readFile(join(dir, 'b', 'outputs', second.id, 'count.txt'), 'utf8')).toBe(count);
      expect(kubo.requests.slice(before).some((request) => request.command === 'block/get')).toBe(true);
    });

    it('a public repository is published whatever IPFS_PUBLISH_PRIVATE says', async () => {
      const { first } = await pipeline(open);
      await worker('a', stores('a', false))(first);
      const ran = (await store.getRun(first.id))!;
      expect(kubo.pins().map((pin) => pin.cid.toString())).toContain(ran.outputCid);
      expect(await appIpfs.getBlock(ran.outputCid!)).toBeNull();
    });

    it('the app builds a store in DATA_DIR beside Kubo for private outputs only while IPFS_PUBLISH_PRIVATE is off', async () => {
      for (const [publish, expected] of [
        [undefined, true],
        ['false', true],
        ['true', false],
      ] as const) {
        const config = loadConfig({ DATA_DIR: join(dir, `services-${publish}`), IPFS_API_URL: kubo.url, ...(publish ? { IPFS_PUBLISH_PRIVATE: publish } : {}) });
        const services = await openServices(config, silent);
        try {
          expect(services.ipfs).toBeInstanceOf(KuboIpfsStore);
          expect(services.privateIpfs instanceof EmbeddedIpfsStore, `IPFS_PUBLISH_PRIVATE=${publish}`).toBe(expected);
        } finally {
          await services.close();
        }
      }
      const embedded = await openServices(loadConfig({ DATA_DIR: join(dir, 'services-embedded') }), silent);
      expect(embedded.privateIpfs).toBeUndefined();
      await embedded.close();
    });

    it('a visibility GitHub does not tell counts as private', async () => {
      hosts.get(open.name)!.failNext('getVisibility', new Error('GitHub answered 502'));
      const { first } = await pipeline(open);
      await worker('a', stores('a', false))(first);
      expect((await store.getRun(first.id))!.state).toBe('succeeded');
      expect(sentToKubo()).toEqual([]);
      expect(await logOf(first.id)).toContain('task-mgmt: GitHub did not say whether octo-org/open is public, so its outputs are not sent to Kubo');
    });
  });
});

/** The file under `root` whose bytes are `content`. */
async function findFile(root: string, content: Buffer): Promise<string> {
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await readFile(path)).includes(content)) return path;
  }
  throw new Error('no file holds that block');
}
