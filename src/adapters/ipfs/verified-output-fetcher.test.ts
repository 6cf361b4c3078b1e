/**
 * Fetching a needed task's outputs by CID: from a gateway as one CAR (here a small server that
 * answers what a gateway might, good or bad) and from Kubo block by block (the fake Kubo). What is
 * written must equal what was added; a block that does not hash to its CID, a missing block, a cut
 * CAR or outputs past the caps fail in one line and leave nothing at the destination.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CarWriter } from '@ipld/car';
import * as dagPb from '@ipld/dag-pb';
import { UnixFS } from 'ipfs-unixfs';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeKubo } from '../../../test/fake-kubo/fake-kubo.js';
import { RetryableError } from '../../ports/errors.js';
import { DagFetchError, type FetchOptions } from '../../ports/output-fetcher.js';
import { EmbeddedIpfsStore } from './embedded-ipfs-store.js';
import { KuboIpfsStore } from './kubo-ipfs-store.js';
import { VerifiedOutputFetcher } from './verified-output-fetcher.js';

const token = 'worker-token-for-fetch-tests-0123';
const bigSize = 1536 * 1024;

let dir: string;
let source: string;
let root: string;
/** Every block of the added folder, in the order the add stored them. */
let blocks: Array<{ cid: CID; bytes: Uint8Array }>;
let bigLeaf: CID;
let server: Server;
let base: string;
let seen: Array<{ url: string; authorization: string | undefined }> = [];
/** What the server answers next: how to spoil the CAR, or another status. */
let answer:
  | { kind: 'car'; spoil?: 'tamper' | 'drop' | 'cut' }
  | { kind: 'blocks'; root: CID; list: Array<{ cid: CID; bytes: Uint8Array }> }
  | { kind: 'status'; status: number; location?: string } = { kind: 'car' };

function bytes(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  for (let at = 0, i = 0; at < size; i += 1) at += createHash('sha256').update(`${seed}${i}`).digest().copy(out, at);
  return out;
}

async function carOf(list: Array<{ cid: CID; bytes: Uint8Array }>, head = CID.parse(root)): Promise<Buffer> {
  const { writer, out } = CarWriter.create([head]);
  const chunks: Uint8Array[] = [];
  const reading = (async () => {
    for await (const chunk of out) chunks.push(chunk);
  })();
  for (const block of list) await writer.put(block);
  await writer.close();
  await reading;
  return Buffer.concat(chunks);
}

async function answerFor(req: IncomingMessage): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
  if (answer.kind === 'blocks') return { status: 200, headers: {}, body: await carOf(answer.list, answer.root) };
  if (answer.kind === 'status') return { status: answer.status, headers: answer.location ? { location: answer.location } : {}, body: Buffer.from('not served here\n') };
  let list = blocks;
  if (answer.spoil === 'tamper') list = blocks.map((block) => (block.cid.equals(bigLeaf) ? { cid: block.cid, bytes: Buffer.from(block.bytes).fill(7, 0, 10) } : block));
  if (answer.spoil === 'drop') list = blocks.filter((block) => !block.cid.equals(bigLeaf));
  let car = await carOf(list);
  if (answer.spoil === 'cut') car = car.subarray(0, car.length - 1000);
  return { status: 200, headers: { 'content-type': 'application/vnd.ipld.car; version=1' }, body: car };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'output-fetch-'));
  source = join(dir, 'out');
  await mkdir(join(source, 'pages', 'deep'), { recursive: true });
  await writeFile(join(source, 'hello.txt'), 'hello world\n');
  await writeFile(join(source, 'empty.txt'), '');
  await writeFile(join(source, 'big.bin'), bytes(bigSize, 'big'));
  await writeFile(join(source, 'pages', 'deep', 'index.html'), '<h1>archived</h1>\n');
  await symlink('../hello.txt', join(source, 'pages', 'link'));
  const store = new EmbeddedIpfsStore({ dataDir: join(dir, 'data') });
  const cids: string[] = [];
  const added = await store.addPath(source, { onBlocks: async (batch) => void cids.push(...batch) });
  root = added.cid;
  blocks = [];
  for (const cid of cids) blocks.push({ cid: CID.parse(cid), bytes: (await store.getBlock(cid))! });
  await store.close();
  // A leaf of big.bin: 1.5 MiB take six 256 KiB chunks.
  bigLeaf = blocks.find((block) => block.bytes.byteLength > 200 * 1024)!.cid;

  server = createServer((req, res) => {
    void answerFor(req).then(({ status, headers, body }) => res.writeHead(status, headers).end(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

let next = 0;
function options(more: Partial<FetchOptions> = {}): FetchOptions {
  return {
    published: false,
    limits: { maxBytes: 1024 * 1024 * 1024, maxFiles: 1000 },
    scratchDir: join(dir, 'scratch', String(++next)),
    signal: new AbortController().signal,
    ...more,
  };
}

function destination(): string {
  return join(dir, 'fetched', String(++next));
}

/** Every entry below `folder`: files with their sha256, folders, and links with their target. */
async function tree(folder: string, prefix = ''): Promise<string[]> {
  const lines: string[] = [];
  for (const entry of (await readdir(folder, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(folder, entry.name);
    const name = `${prefix}${entry.name}`;
    if (entry.isSymbolicLink()) lines.push(`${name} -> ${await readlink(path)}`);
    else if (entry.isDirectory()) lines.push(`${name}/`, ...(await tree(path, `${name}/`)));
    else lines.push(`${name} ${createHash('sha256').update(await readFile(path)).digest('hex')}`);
  }
  return lines;
}

/** A UnixFS node of a DAG written by hand, as a hostile or broken source could hold it. */
async function node(unixfs: UnixFS, links: Array<{ name: string; cid: CID }> = []): Promise<{ cid: CID; bytes: Uint8Array }> {
  const bytes = dagPb.encode({ Data: unixfs.marshal(), Links: links.map((link) => ({ Name: link.name, Hash: link.cid, Tsize: 1 })) });
  return { cid: CID.createV0(await sha256.digest(bytes)), bytes };
}

const gone = (path: string) => stat(path).then(() => false, () => true);

describe('from the app’s gateway', () => {
  it('writes the folder as it was added, asking for the whole DAG as a CAR with the worker token', async () => {
    answer = { kind: 'car' };
    seen = [];
    const into = destination();
    await new VerifiedOutputFetcher({ appUrl: base, token }).fetch(root, into, options());
    expect(await tree(into)).toEqual(await tree(source));
    expect(seen).toEqual([{ url: `/ipfs/${root}?format=car&dag-scope=all`, authorization: `Bearer ${token}` }]);
  });

  it.each([
    ['tamper', `block ${'<leaf>'} from the app's gateway at`, 'does not match its CID'],
    ['drop', 'lacks block <leaf>', 'the DAG is incomplete'],
    ['cut', 'was cut off after', 'Unexpected end of data'],
  ] as const)('a CAR spoiled (%s) fails in one line and leaves nothing', async (spoil, first, second) => {
    answer = { kind: 'car', spoil };
    const into = destination();
    const scratch = options();
    const failure = await new VerifiedOutputFetcher({ appUrl: base, token }).fetch(root, into, scratch).then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(DagFetchError);
    const message = (failure as Error).message;
    expect(message).toContain(first.replace('<leaf>', bigLeaf.toString()));
    expect(message).toContain(second);
    expect(message).not.toContain('\n');
    expect(await gone(into)).toBe(true);
    expect(await gone(join(scratch.scratchDir, 'tree'))).toBe(true);
    expect(await gone(join(scratch.scratchDir, 'blocks'))).toBe(true);
  });

  it('refuses a name that is not one plain segment, and an entry named twice, writing nothing through a link', async () => {
    const outside = join(dir, 'outside');
    await mkdir(outside, { recursive: true });
    const file = await node(new UnixFS({ type: 'file', data: Buffer.from('overwritten?\n') }));
    const climbing = await node(new UnixFS({ type: 'directory' }), [{ name: '..', cid: file.cid }]);
    answer = { kind: 'blocks', root: climbing.cid, list: [climbing, file] };
    await expect(new VerifiedOutputFetcher({ appUrl: base }).fetch(climbing.cid.toString(), destination(), options())).rejects.toThrow(
      `folder ${climbing.cid.toString()} names an entry ".." which is not a file name`,
    );

    const link = await node(new UnixFS({ type: 'symlink', data: Buffer.from(outside) }));
    const inner = await node(new UnixFS({ type: 'directory' }), [{ name: 'victim.txt', cid: file.cid }]);
    const twice = await node(new UnixFS({ type: 'directory' }), [
      { name: 'a', cid: link.cid },
      { name: 'a', cid: inner.cid },
    ]);
    answer = { kind: 'blocks', root: twice.cid, list: [twice, link, inner, file] };
    const into = destination();
    await expect(new VerifiedOutputFetcher({ appUrl: base }).fetch(twice.cid.toString(), into, options())).rejects.toThrow('a folder of the outputs names one entry twice');
    expect(await readdir(outside)).toEqual([]);
    expect(await gone(into)).toBe(true);
  });

  it('stops at the caps on bytes and on files', async () => {
    answer = { kind: 'car' };
    const fetcher = new VerifiedOutputFetcher({ appUrl: base, token });
    // The CAR may hold the content and the DAG's own nodes (carBudget): 1,162,816 bytes for these caps.
    await expect(fetcher.fetch(root, destination(), options({ limits: { maxBytes: 100 * 1024, maxFiles: 10 } }))).rejects.toThrow(
      /^the CAR from the app's gateway at .* is larger than the 1,162,816 bytes the outputs may take$/,
    );
    await expect(fetcher.fetch(root, destination(), options({ limits: { maxBytes: 500 * 1024, maxFiles: 1000 } }))).rejects.toThrow(
      'the outputs are larger than OUTPUT_MAX_BYTES (512,000 bytes)',
    );
    await expect(fetcher.fetch(root, destination(), options({ limits: { maxBytes: 1024 * 1024 * 1024, maxFiles: 3 } }))).rejects.toThrow(
      'the outputs hold more than OUTPUT_MAX_FILES (3) files and folders',
    );
  });

  it('a 404 says what may be missing; a redirect is not followed; a 503 may be tried again', async () => {
    const fetcher = new VerifiedOutputFetcher({ appUrl: base });
    answer = { kind: 'status', status: 404 };
    await expect(fetcher.fetch(root, destination(), options())).rejects.toThrow(
      `the app's gateway at ${base}/ipfs/${root} answered 404 (not served here): it holds no live pin of ${root}, or the outputs are a private repository's and this worker has no WORKER_TOKEN`,
    );
    seen = [];
    answer = { kind: 'status', status: 302, location: 'http://127.0.0.2:9/elsewhere' };
    await expect(fetcher.fetch(root, destination(), options())).rejects.toThrow('answered 302 (not served here): redirects are not followed');
    expect(seen).toHaveLength(1);
    answer = { kind: 'status', status: 503 };
    await expect(fetcher.fetch(root, destination(), options())).rejects.toBeInstanceOf(RetryableError);
  });

  it('nothing listening is worth another try later', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const failure = new VerifiedOutputFetcher({ appUrl: `http://127.0.0.1:${port}` }).fetch(root, destination(), options());
    await expect(failure).rejects.toBeInstanceOf(RetryableError);
    await expect(failure).rejects.toThrow(`cannot reach the app's gateway at http://127.0.0.1:${port}/ipfs/${root}: ECONNREFUSED`);
  });

  it('without PUBLIC_URL it cannot know where to ask, and says so', async () => {
    await expect(new VerifiedOutputFetcher({}).fetch(root, destination(), options())).rejects.toThrow("PUBLIC_URL, the app's address whose gateway serves them, is not set");
  });
});

describe('from Kubo, when the outputs were published there', () => {
  let kubo: FakeKubo;
  let kuboRoot: string;
  let kuboLeaf: CID;

  beforeAll(async () => {
    kubo = await FakeKubo.start();
    const store = new KuboIpfsStore({ apiUrl: kubo.url });
    kuboRoot = (await store.addPath(source)).cid;
    kuboLeaf = kubo.storedBlocks().find((block) => block.bytes.byteLength > 200 * 1024)!.cid;
  });

  afterAll(async () => {
    await kubo?.close();
  });

  it('reads each block with block/get, offline, and writes the same folder; the gateway is not asked', async () => {
    seen = [];
    const into = destination();
    const node = new KuboIpfsStore({ apiUrl: kubo.url });
    await new VerifiedOutputFetcher({ node: { blocks: node, name: `Kubo at ${kubo.url}` }, appUrl: base, token }).fetch(kuboRoot, into, options({ published: true }));
    expect(await tree(into)).toEqual(await tree(source));
    expect(seen).toEqual([]);
    const reads = kubo.requests.filter((request) => request.command === 'block/get');
    expect(reads.every((request) => request.query.get('offline') === 'true')).toBe(true);
    // Every block of the DAG: all Kubo holds but the empty folder each add's CARs name as their root.
    const dag = kubo.storedBlocks().map((block) => block.cid.toString()).filter((cid) => cid !== 'QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn');
    expect(new Set(reads.map((request) => request.query.get('arg')))).toEqual(new Set(dag));
  });

  it('a block Kubo holds wrongly fails the fetch, naming it', async () => {
    const good = kubo.storedBlocks().find((block) => block.cid.equals(kuboLeaf))!.bytes;
    // Bytes inside the leaf's data, so the block is still a well-formed node, only not the one named.
    kubo.corruptBlock(kuboLeaf, Buffer.from(good).fill(1, 100, 110));
    try {
      const into = destination();
      const node = new KuboIpfsStore({ apiUrl: kubo.url });
      await expect(new VerifiedOutputFetcher({ node: { blocks: node, name: `Kubo at ${kubo.url}` } }).fetch(kuboRoot, into, options({ published: true }))).rejects.toThrow(
        `block ${kuboLeaf.toString()} from Kubo at ${kubo.url} does not match its CID`,
      );
      expect(await gone(into)).toBe(true);
    } finally {
      kubo.corruptBlock(kuboLeaf, good);
    }
  });

  it('published outputs Kubo lacks (the repository was private then) come from the app’s gateway', async () => {
    const file = await node(new UnixFS({ type: 'file', data: Buffer.from('kept off Kubo\n') }));
    const folder = await node(new UnixFS({ type: 'directory' }), [{ name: 'note.txt', cid: file.cid }]);
    answer = { kind: 'blocks', root: folder.cid, list: [folder, file] };
    seen = [];
    const into = destination();
    const kuboNode = new KuboIpfsStore({ apiUrl: kubo.url });
    await new VerifiedOutputFetcher({ node: { blocks: kuboNode, name: `Kubo at ${kubo.url}` }, appUrl: base }).fetch(folder.cid.toString(), into, options({ published: true }));
    expect(await readFile(join(into, 'note.txt'), 'utf8')).toBe('kept off Kubo\n');
    expect(seen).toHaveLength(1);
    await expect(new VerifiedOutputFetcher({ node: { blocks: kuboNode, name: `Kubo at ${kubo.url}` } }).fetch(folder.cid.toString(), destination(), options({ published: true }))).rejects.toThrow(
      `Kubo at ${kubo.url} does not have them, and PUBLIC_URL, the app's address whose gateway serves them, is not set`,
    );
  });

  it('outputs kept off Kubo come from the app’s gateway', async () => {
    answer = { kind: 'car' };
    seen = [];
    const node = new KuboIpfsStore({ apiUrl: kubo.url });
    const into = destination();
    await new VerifiedOutputFetcher({ node: { blocks: node, name: `Kubo at ${kubo.url}` }, appUrl: base, token }).fetch(root, into, options({ published: false }));
    expect(await tree(into)).toEqual(await tree(source));
    expect(seen).toHaveLength(1);
  });
});
