/**
 * An independent client against the app's trustless gateway: `@helia/verified-fetch`, given the
 * gateway as its only source of blocks, fetches each output of a run by CID and by path and gets
 * the bytes the task wrote. It checks every block it receives against its CID, so a gateway that
 * served anything else would fail it.
 *
 * `@helia/verified-fetch` 8 does not load on Node 20 (its undici calls `zlib.createZstdDecompress`,
 * which Node 22.15 brought), so on older Node this file says so and skips; the GitHub workflow runs
 * it on Node 22 and 24. The Helia node is built with HTTP only and no delegated router, so it asks
 * nothing but the gateway on loopback (verified-fetch's own default would start libp2p and go online).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pinnedAccess } from '../../src/adapters/http/ipfs-gateway-access.js';
import { createIpfsGateway } from '../../src/adapters/http/ipfs-gateway.js';
import { EmbeddedIpfsStore } from '../../src/adapters/ipfs/embedded-ipfs-store.js';
import { SqliteRunStore } from '../../src/adapters/store/sqlite-run-store.js';
import { addAndPin } from '../../src/core/pins/add-and-pin.js';
import type { RepoRef } from '../../src/core/runs/run.js';
import { at, newRun } from '../contracts/run-store.contract.js';

const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
const loads = major > 22 || (major === 22 && minor >= 15);
if (!loads) {
  console.warn(
    `\n!!! SKIPPING test/e2e/gateway-verified-fetch.test.ts: @helia/verified-fetch needs Node 22.15 or newer (zlib.createZstdDecompress), this is Node ${process.versions.node}. The GitHub workflow runs it on Node 22 and 24.\n`,
  );
}

type VerifiedFetch = ((resource: string, options?: { signal?: AbortSignal }) => Promise<Response>) & { stop(): Promise<void> };

const repo: RepoRef = { owner: 'octo-org', name: 'open', installationId: 7 };
/** What the run wrote: several blocks in one file, a nested folder, an HTML page. */
const files: Record<string, Buffer> = {
  'report.txt': Buffer.from('all good\n'),
  'data/table.csv': Buffer.from('a,b\n1,2\n'),
  'data/deep/big.bin': Buffer.from(Array.from({ length: 700_000 }, (_, i) => (i * 7919) % 251)),
  'pages/index.html': Buffer.from('<h1>archived</h1>\n'),
};

describe.skipIf(!loads)('@helia/verified-fetch through the app’s gateway', () => {
  let dir: string;
  let store: SqliteRunStore;
  let ipfs: EmbeddedIpfsStore;
  let server: Server;
  let gatewayUrl: string;
  let root: string;
  let outputFiles: Array<{ name: string; cid: string }>;
  let verifiedFetch: VerifiedFetch;
  const clients: VerifiedFetch[] = [];

  /**
   * A verified-fetch whose only source of blocks is the gateway at `url`. Loaded here, not at the
   * top, so that Node 20 can read this file and skip it.
   */
  async function verifiedFetchThrough(url: string): Promise<VerifiedFetch> {
    const { createHeliaLight } = await import('helia');
    const { withHTTP } = await import('@helia/http');
    const { createVerifiedFetch } = await import('@helia/verified-fetch');
    const node = withHTTP(createHeliaLight(), { delegatedRouters: [], recursiveGateways: [url], allowInsecure: true, allowLocal: true });
    // Helia asks its fallback routers (the gateway) only once its other routers have finished, and
    // with none it waits forever: this one finishes at once, having found nothing.
    node.addRouter({ name: 'no-delegated-routing', async *findProviders() {} });
    await node.start();
    const fetch = await createVerifiedFetch(node);
    const client = Object.assign((resource: string, options?: { signal?: AbortSignal }) => fetch(resource, options), {
      stop: async () => {
        await fetch.stop();
        await node.stop();
      },
    });
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gateway-verified-fetch-'));
    store = await SqliteRunStore.open(':memory:');
    ipfs = new EmbeddedIpfsStore({ dataDir: join(dir, 'data') });
    // A run's outputs, added and pinned as the worker does: only what a live pin holds is served.
    const run = await store.createRun(newRun({ repo }), at(0));
    const out = join(dir, 'out');
    for (const [name, bytes] of Object.entries(files)) {
      await mkdir(join(out, name, '..'), { recursive: true });
      await writeFile(join(out, name), bytes);
    }
    const { added } = await addAndPin({ store, ipfs, now: () => at(2) }, { runId: run.id, kind: 'outputs', path: out, pinnedUntil: at(3600) });
    root = added.cid;
    outputFiles = added.entries;
    const gateway = createIpfsGateway({
      blocks: ipfs,
      tokens: [],
      log: pino({ level: 'silent' }),
      access: pinnedAccess({ pins: store, reads: { canRead: async () => false }, visibility: async () => 'public', now: () => at(10) }),
    });
    server = createServer((req, res) => {
      void gateway(req, res).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    gatewayUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    verifiedFetch = await verifiedFetchThrough(gatewayUrl);
  });

  afterAll(async () => {
    for (const client of clients) await client.stop();
    if (server) await new Promise((resolve) => server.close(resolve));
    await ipfs?.close();
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('fetches each output by the run’s root CID and its path', async () => {
    for (const [name, bytes] of Object.entries(files)) {
      const response = await verifiedFetch(`ipfs://${root}/${name}`);
      expect(response.status, name).toBe(200);
      expect(Buffer.from(await response.arrayBuffer()).equals(bytes), name).toBe(true);
    }
  });

  it('fetches each top-level entry the run reports by its own CID', async () => {
    expect(outputFiles.map((entry) => entry.name)).toEqual(['data', 'pages', 'report.txt']);
    for (const entry of outputFiles) {
      for (const [name, bytes] of Object.entries(files)) {
        if (name !== entry.name && !name.startsWith(`${entry.name}/`)) continue;
        const path = name.slice(entry.name.length);
        const response = await verifiedFetch(`ipfs://${entry.cid}${path}`);
        expect(response.status, name).toBe(200);
        expect(Buffer.from(await response.arrayBuffer()).equals(bytes), name).toBe(true);
      }
    }
  });

  it('gets a CID nobody pinned from nowhere: the gateway is its only source', async () => {
    // "hello world\n" as bare `ipfs add` makes it; this store holds it under no pin.
    const response = await verifiedFetch('ipfs://QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o', { signal: AbortSignal.timeout(5000) }).catch((error: unknown) => error);
    expect(response instanceof Response ? response.status : 'failed').not.toBe(200);
  });

  it('refuses a block a gateway changed: it checks every block against its CID', async () => {
    // A gateway in front of the app's that flips the last byte of every block it passes on.
    const liar = createServer((req, res) => {
      void fetch(`${gatewayUrl}${req.url}`, { headers: { accept: req.headers.accept ?? '*/*' } }).then(async (answer) => {
        const body = Buffer.from(await answer.arrayBuffer());
        if (answer.status === 200 && body.length > 0) body[body.length - 1]! ^= 0x01;
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/octet-stream' }).end(body);
      });
    });
    await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
    try {
      const lied = await verifiedFetchThrough(`http://127.0.0.1:${(liar.address() as AddressInfo).port}`);
      const answer = await lied(`ipfs://${root}/report.txt`, { signal: AbortSignal.timeout(5000) }).catch((error: unknown) => error);
      expect(answer instanceof Response ? answer.status : 'failed').not.toBe(200);
    } finally {
      await new Promise((resolve) => liar.close(resolve));
    }
  });
});
