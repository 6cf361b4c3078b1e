/**
 * The gateway over a real HTTP server and a real embedded store: every block a response carries is
 * checked against its CID here (sha-256, multiformats), CARs are read back with @ipld/car, and the
 * DAG they should hold is walked independently from the store.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { CarReader } from '@ipld/car';
import * as dagPb from '@ipld/dag-pb';
import { UnixFS } from 'ipfs-unixfs';
import { exporter } from 'ipfs-unixfs-exporter';
import { importer } from 'ipfs-unixfs-importer';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedIpfsStore } from '../ipfs/embedded-ipfs-store.js';
import type { ApiActor } from './http-io.js';
import { writeCar, type Block } from './ipfs-gateway-car.js';
import { createIpfsGateway, type ContentAccess } from './ipfs-gateway.js';

const serviceToken = 'gateway-test-service-token-0123456789';
const hostileName = '<img src=x onerror=alert(1)>.html';
const scriptPage = '<!doctype html><html><body><script>document.title = "ran"</script></body></html>\n';
const bigSize = 700 * 1024;

let dir: string;
let store: EmbeddedIpfsStore;
let server: Server;
let base: string;
let big: Buffer;
/** Root of the public output folder. */
let root: string;
/** A private run's output; and one nobody pinned. */
let privateRoot: string;
let unpinned: string;
/** A HAMT-sharded folder. */
let hamtRoot: string;
const hamtFiles = 300;
/** Blocks of the HAMT folder, by multihash, as the embedded store finds them. */
const hamtBlocks = new Map<string, Uint8Array>();
const hamtName = (i: number) => `f${String(i).padStart(30, '0')}`;
const entries = new Map<string, string>();
const accessAsked: Array<{ cid: string; actor: ApiActor | null }> = [];

/** Deterministic bytes (a ChaCha20 keystream), so a multi-block file has distinct blocks. */
function bytes(size: number, seed: string): Buffer {
  return createCipheriv('chacha20', createHash('sha256').update(seed).digest(), Buffer.alloc(16)).update(Buffer.alloc(size));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ipfs-gateway-'));
  store = new EmbeddedIpfsStore({ dataDir: join(dir, 'data') });
  const out = join(dir, 'out');
  await mkdir(join(out, 'sub'), { recursive: true });
  await mkdir(join(out, 'site'), { recursive: true });
  big = bytes(bigSize, 'big');
  await writeFile(join(out, 'hello.txt'), 'hello world\n');
  await writeFile(join(out, 'big.bin'), big);
  await writeFile(join(out, 'page.html'), scriptPage);
  await writeFile(join(out, hostileName), 'x');
  await writeFile(join(out, 'sub', 'nested.txt'), 'nested\n');
  await writeFile(join(out, 'site', 'index.html'), '<p>home</p>\n');
  const added = await store.addPath(out);
  root = added.cid;
  for (const entry of added.entries) entries.set(entry.name, entry.cid);
  await mkdir(join(dir, 'secret'));
  await writeFile(join(dir, 'secret', 'private.txt'), 'private\n');
  privateRoot = (await store.addPath(join(dir, 'secret'))).cid;
  // Kubo shards a folder past 256 KiB of links (thousands of files, slow to add); the importer itself
  // shards a small one when told to, 16 buckets a level, so a path crosses several shards.
  const files = Array.from({ length: hamtFiles }, (_, i) => ({ path: `many/${hamtName(i)}`, content: Buffer.from(String(i)) }));
  const memory = {
    put: async (cid: CID, bytes: Uint8Array) => {
      hamtBlocks.set(Buffer.from(cid.multihash.bytes).toString('hex'), bytes);
      return cid;
    },
  };
  const sharded = importer(files, memory, {
    shardSplitThresholdBytes: 1,
    shardFanoutBits: 4,
    wrapWithDirectory: false,
  });
  for await (const entry of sharded) if (entry.path === 'many') hamtRoot = entry.cid.toString();
  await writeFile(join(dir, 'loose.txt'), 'not pinned\n');
  unpinned = (await store.addPath(join(dir, 'loose.txt'))).cid;

  // As live pins do: a pin holds every block below its root. The private output is a service token's to read.
  const publicBlocks = new Set([...(await dagOf(root)), ...(await dagOf(hamtRoot))]);
  const privateBlocks = new Set(await dagOf(privateRoot));
  const access = async (cid: CID, actor: ApiActor | null): Promise<ContentAccess> => {
    accessAsked.push({ cid: cid.toString(), actor });
    if (publicBlocks.has(cid.toString())) return 'public';
    if (privateBlocks.has(cid.toString()) && actor?.kind === 'service') return 'restricted';
    return 'not-found';
  };
  const blocks = {
    getBlock: async (cid: string, options?: { signal?: AbortSignal }) =>
      hamtBlocks.get(Buffer.from(CID.parse(cid).multihash.bytes).toString('hex')) ?? store.getBlock(cid, options),
  };
  const gateway = createIpfsGateway({ blocks, access, tokens: [serviceToken], log: pino({ level: 'silent' }) });
  server = createServer((req, res) => {
    void gateway(req, res).then((handled) => {
      if (!handled) res.writeHead(418).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Response> {
  return fetch(`${base}${path}`, { method, headers, redirect: 'manual' });
}

async function body(response: Response): Promise<Buffer> {
  return Buffer.from(await response.arrayBuffer());
}

/** Whether `bytes` hash (sha-256) to the CID's multihash. */
async function hashesTo(cid: CID, bytes: Uint8Array): Promise<boolean> {
  return Buffer.from((await sha256.digest(bytes)).bytes).equals(Buffer.from(cid.multihash.bytes));
}

async function readCar(response: Response): Promise<{ roots: string[]; blocks: Array<{ cid: CID; bytes: Uint8Array }> }> {
  const reader = await CarReader.fromBytes(await body(response));
  const blocks: Array<{ cid: CID; bytes: Uint8Array }> = [];
  for await (const block of reader.blocks()) blocks.push(block);
  return { roots: (await reader.getRoots()).map(String), blocks };
}

/** Every block of the DAG below `cid`, depth first, each once: what a CAR of it must hold, walked here without the gateway. */
async function dagOf(cid: string, seen = new Set<string>()): Promise<string[]> {
  if (seen.has(cid)) return [];
  seen.add(cid);
  const parsed = CID.parse(cid);
  const found = [cid];
  if (parsed.code === raw.code) return found;
  const node = dagPb.decode((hamtBlocks.get(Buffer.from(parsed.multihash.bytes).toString('hex')) ?? (await store.getBlock(cid)))!);
  for (const link of node.Links) found.push(...(await dagOf(link.Hash.toString(), seen)));
  return found;
}

function expectUntrustedHeaders(response: Response): void {
  expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  expect(response.headers.get('content-security-policy')).toBe('sandbox');
}

describe('raw blocks', () => {
  it('answers one block, exactly its bytes, which hash to its CID', async () => {
    const cid = entries.get('hello.txt')!;
    const response = await get(`/ipfs/${cid}?format=raw`);
    expect(response.status).toBe(200);
    const block = await body(response);
    expect(await hashesTo(CID.parse(cid), block)).toBe(true);
    expect(response.headers.get('content-type')).toBe('application/vnd.ipld.raw');
    expect(response.headers.get('etag')).toBe(`"${cid}.raw"`);
    expect(response.headers.get('content-disposition')).toContain(`attachment; filename="${cid}.bin"`);
    expect(response.headers.get('cache-control')).toBe('public, max-age=29030400, immutable');
    expectUntrustedHeaders(response);
  });

  it('answers Accept: application/vnd.ipld.raw the same, naming the format in Content-Location', async () => {
    const response = await get(`/ipfs/${root}`, { accept: 'application/vnd.ipld.raw' });
    expect(response.status).toBe(200);
    expect(await hashesTo(CID.parse(root), await body(response))).toBe(true);
    expect(response.headers.get('content-location')).toBe(`/ipfs/${root}?format=raw`);
    expect(response.headers.get('vary')).toBe('Accept');
  });

  it('answers the identity probe bafkqaaa with an empty body, for anyone', async () => {
    const response = await get('/ipfs/bafkqaaa?format=raw');
    expect(response.status).toBe(200);
    expect((await body(response)).length).toBe(0);
    const car = await readCar(await get('/ipfs/bafkqaaa?format=car'));
    expect(car).toEqual({ roots: ['bafkqaaa'], blocks: [] });
  });
});

describe('CARs', () => {
  it('dag-scope=all (the default): exactly the DAG, each block once, each hashing to its CID', async () => {
    const response = await get(`/ipfs/${root}?format=car`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/vnd.ipld.car; version=1; order=dfs; dups=n');
    expect(response.headers.get('content-disposition')).toContain(`filename="${root}.car"`);
    expect(response.headers.get('etag')).toBe(`"${root}.car.all"`);
    expectUntrustedHeaders(response);
    const car = await readCar(response);
    expect(car.roots).toEqual([root]);
    for (const block of car.blocks) expect(await hashesTo(block.cid, block.bytes), block.cid.toString()).toBe(true);
    expect(car.blocks.map((block) => block.cid.toString())).toEqual(await dagOf(root));
  });

  it('dag-scope=block: the block at the end of the path, after the blocks of the path', async () => {
    const bigCid = entries.get('big.bin')!;
    const response = await get(`/ipfs/${root}/big.bin?format=car&dag-scope=block`);
    expect(response.headers.get('x-ipfs-roots')).toBe(`${root},${bigCid}`);
    const car = await readCar(response);
    expect(car.roots).toEqual([bigCid]);
    expect(car.blocks.map((block) => block.cid.toString())).toEqual([root, bigCid]);
  });

  it('dag-scope=entity: a whole file below the path, but a folder without its entries', async () => {
    const bigCid = entries.get('big.bin')!;
    const file = await readCar(await get(`/ipfs/${root}/big.bin?format=car&dag-scope=entity`));
    expect(file.blocks.map((block) => block.cid.toString())).toEqual([root, ...(await dagOf(bigCid))]);
    expect((await dagOf(bigCid)).length).toBeGreaterThan(2);
    const folder = await readCar(await get(`/ipfs/${root}?format=car&dag-scope=entity`));
    expect(folder.blocks.map((block) => block.cid.toString())).toEqual([root]);
  });

  it('entity-bytes: only the blocks holding the range', async () => {
    const bigCid = entries.get('big.bin')!;
    const [fileRoot, firstLeaf, secondLeaf, thirdLeaf] = await dagOf(bigCid);
    const head = await readCar(await get(`/ipfs/${bigCid}?format=car&entity-bytes=0:10`));
    expect(head.blocks.map((block) => block.cid.toString())).toEqual([fileRoot, firstLeaf]);
    const tail = await readCar(await get(`/ipfs/${bigCid}?format=car&entity-bytes=-10:*`));
    expect(tail.blocks.map((block) => block.cid.toString())).toEqual([fileRoot, thirdLeaf]);
    const across = await readCar(await get(`/ipfs/${bigCid}?format=car&entity-bytes=262140:262150`));
    expect(across.blocks.map((block) => block.cid.toString())).toEqual([fileRoot, firstLeaf, secondLeaf]);
  });

  it('HEAD promises the CAR without walking it', async () => {
    const response = await get(`/ipfs/${root}?format=car`, {}, 'HEAD');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/vnd.ipld.car');
    expect((await body(response)).length).toBe(0);
  });

  it('waits for a reader: a CAR whose reader stops takes no more blocks', async () => {
    let pulled = 0;
    async function* blocks(): AsyncGenerator<Block> {
      for (let i = 0; i < 1000; i++) {
        const bytes = Buffer.alloc(64 * 1024, i % 256);
        pulled++;
        yield { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes };
      }
    }
    const stuck = new Writable({ highWaterMark: 1024, write: () => undefined });
    const writing = writeCar(stuck, CID.parse(root), blocks()).catch(() => undefined);
    let before = -1;
    while (before !== pulled) {
      before = pulled;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(pulled).toBeLessThan(5);
    stuck.destroy();
    await writing;
  });
});

describe('files and folders', () => {
  it('a file by path, its type guessed, with its CID as ETag and the path headers', async () => {
    const response = await get(`/ipfs/${root}/hello.txt`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('hello world\n');
    expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(response.headers.get('etag')).toBe(`"${entries.get('hello.txt')}"`);
    expect(response.headers.get('x-ipfs-path')).toBe(`/ipfs/${root}/hello.txt`);
    expect(response.headers.get('x-ipfs-roots')).toBe(`${root},${entries.get('hello.txt')}`);
    expect(response.headers.get('accept-ranges')).toBe('bytes');
    expectUntrustedHeaders(response);
  });

  it('a single Range of a file spanning several blocks: 206 with exactly those bytes', async () => {
    const response = await get(`/ipfs/${root}/big.bin`, { range: 'bytes=262140-262150' });
    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe(`bytes 262140-262150/${bigSize}`);
    expect((await body(response)).equals(big.subarray(262140, 262151))).toBe(true);
    const suffix = await get(`/ipfs/${root}/big.bin`, { range: 'bytes=-5' });
    expect((await body(suffix)).equals(big.subarray(bigSize - 5))).toBe(true);
  });

  it('the whole of a multi-block file, byte for byte', async () => {
    const response = await get(`/ipfs/${root}/big.bin`);
    expect(response.headers.get('content-length')).toBe(String(bigSize));
    expect((await body(response)).equals(big)).toBe(true);
  });

  it('416 for a range past the end', async () => {
    const response = await get(`/ipfs/${root}/hello.txt`, { range: 'bytes=100-' });
    expect(response.status).toBe(416);
    expect(response.headers.get('content-range')).toBe('bytes */12');
    expectUntrustedHeaders(response);
  });

  it('HEAD: the headers of the file, no body', async () => {
    const response = await get(`/ipfs/${root}/hello.txt`, {}, 'HEAD');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe('12');
    expect(response.headers.get('etag')).toBe(`"${entries.get('hello.txt')}"`);
    expect((await body(response)).length).toBe(0);
  });

  it('304 when If-None-Match names the ETag', async () => {
    const etag = `"${entries.get('hello.txt')}"`;
    const response = await get(`/ipfs/${root}/hello.txt`, { 'if-none-match': etag });
    expect(response.status).toBe(304);
    expect(response.headers.get('etag')).toBe(etag);
    expect(response.headers.get('cache-control')).toBe('public, max-age=29030400, immutable');
    expect((await body(response)).length).toBe(0);
    const raw = await get(`/ipfs/${root}?format=raw`, { 'if-none-match': `"${root}.raw"` });
    expect(raw.status).toBe(304);
  });

  it('task-written HTML is sent sandboxed: no script of it can run as the app', async () => {
    const response = await get(`/ipfs/${root}/page.html`, { cookie: 'session=would-be-ignored' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await response.text()).toContain('<script>');
    expectUntrustedHeaders(response);
  });

  it("a folder's URL gains its slash, then lists its entries with hostile names escaped", async () => {
    const redirect = await get(`/ipfs/${root}?x=1`);
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe(`/ipfs/${root}/?x=1`);
    const response = await get(`/ipfs/${root}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('etag')).toMatch(new RegExp(`^"DirIndex-.+_CID-${root}"$`));
    expectUntrustedHeaders(response);
    const page = await response.text();
    expect(page).not.toContain('<img');
    expect(page).toContain('&#60;img src=x onerror=alert(1)&#62;.html');
    expect(page).toContain(`href="./${encodeURIComponent(hostileName).replace(/'/g, '&#39;')}"`);
    expect(page).toContain('href="./hello.txt"');
    expect(page).toContain(`href="/ipfs/${entries.get('hello.txt')}?filename=hello.txt"`);
  });

  it("a folder's index.html in place of a listing", async () => {
    const response = await get(`/ipfs/${root}/site/`);
    expect(await response.text()).toBe('<p>home</p>\n');
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
  });

  it('filename= and download=true name the file in Content-Disposition', async () => {
    const cid = entries.get('hello.txt')!;
    const inline = await get(`/ipfs/${cid}?filename=caf%C3%A9.txt`);
    expect(inline.headers.get('content-disposition')).toBe(`inline; filename="caf_.txt"; filename*=UTF-8''caf%C3%A9.txt`);
    const attachment = await get(`/ipfs/${cid}?filename=a.txt&download=true`);
    expect(attachment.headers.get('content-disposition')).toBe(`attachment; filename="a.txt"; filename*=UTF-8''a.txt`);
  });
});

describe('a HAMT-sharded folder', () => {
  /** Blocks a client got, as the only blocks it can resolve or list with. */
  function blockstoreOf(blocks: Array<{ cid: CID; bytes: Uint8Array }>) {
    const byCid = new Map(blocks.map((block) => [block.cid.toString(), block.bytes]));
    return {
      get: async function* (cid: CID) {
        const bytes = byCid.get(cid.toString());
        if (!bytes) throw new Error(`the CAR lacks ${cid.toString()}`);
        yield bytes;
      },
    };
  }

  it('a file by path through its shards', async () => {
    const response = await get(`/ipfs/${hamtRoot}/${hamtName(123)}`);
    expect(await response.text()).toBe('123');
    expect(response.headers.get('x-ipfs-roots')?.split(',')).toHaveLength(2);
  });

  it('a CAR of a path through it holds the shards a client needs to verify the path', async () => {
    const response = await get(`/ipfs/${hamtRoot}/${hamtName(123)}?format=car&dag-scope=block`);
    const car = await readCar(response);
    for (const block of car.blocks) expect(await hashesTo(block.cid, block.bytes)).toBe(true);
    expect(car.blocks.length).toBeGreaterThan(2);
    const resolved = await exporter(`${hamtRoot}/${hamtName(123)}`, blockstoreOf(car.blocks));
    expect(resolved.cid.toString()).toBe(car.roots[0]);
    expect(resolved.cid.toString()).toBe(response.headers.get('x-ipfs-roots')?.split(',')[1]);
  });

  it('dag-scope=entity: every shard, so a client can list it, and none of its files', async () => {
    const car = await readCar(await get(`/ipfs/${hamtRoot}?format=car&dag-scope=entity`));
    const folder = await exporter(hamtRoot, blockstoreOf(car.blocks));
    if (folder.type !== 'directory') throw new Error('not a folder');
    let listed = 0;
    for await (const _entry of folder.entries()) listed++;
    expect(listed).toBe(hamtFiles);
    for (const block of car.blocks) {
      expect(block.cid.code).toBe(dagPb.code);
      expect(UnixFS.unmarshal(dagPb.decode(block.bytes).Data!).type).toBe('hamt-sharded-directory');
    }
  });

  it('lists it', async () => {
    const page = await (await get(`/ipfs/${hamtRoot}/`)).text();
    expect(page.match(/<tr><td><a href="\.\/f/g)).toHaveLength(hamtFiles);
  });
});

describe('who may fetch what', () => {
  it('404 with one line for content nobody pinned, the same as for a private output without a token', async () => {
    const none = await get(`/ipfs/${unpinned}`);
    const hidden = await get(`/ipfs/${privateRoot}/private.txt`);
    expect(none.status).toBe(404);
    expect(hidden.status).toBe(404);
    expectUntrustedHeaders(hidden);
    expect(hidden.headers.get('cache-control')).toBe('no-store');
    const lines = [await none.text(), await hidden.text()];
    for (const line of lines) expect(line.trimEnd().split('\n')).toHaveLength(1);
    expect(lines[1]!.replace(privateRoot, 'CID')).toBe(lines[0]!.replace(unpinned, 'CID'));
  });

  it('a private output to a token allowed to read it, cached privately; cookies count for nothing', async () => {
    const withCookie = await get(`/ipfs/${privateRoot}/private.txt`, { cookie: `token=${serviceToken}` });
    expect(withCookie.status).toBe(404);
    const response = await get(`/ipfs/${privateRoot}/private.txt`, { authorization: `Bearer ${serviceToken}` });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('private\n');
    expect(response.headers.get('cache-control')).toBe('private, max-age=29030400, immutable');
    expect(accessAsked.at(-1)).toEqual({ cid: privateRoot, actor: { kind: 'service', name: expect.stringMatching(/^service:/) } });
  });

  it('401 for a token that is not valid, rather than answering as nobody', async () => {
    const response = await get(`/ipfs/${root}/hello.txt`, { authorization: 'Bearer not-a-token-anyone-knows' });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
    expectUntrustedHeaders(response);
  });

  it('asks access about the CID of the request, never about a block below it', async () => {
    accessAsked.length = 0;
    await (await get(`/ipfs/${root}/sub/nested.txt`)).text();
    expect(accessAsked.map((asked) => asked.cid)).toEqual([root]);
  });
});

describe('malformed requests', () => {
  it.each([
    ['not a CID', '/ipfs/nope'],
    ['an encoded slash in a name', `/ipfs/QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o/a%2Fb`],
    ['an unserved format', '/ipfs/QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o?format=tar'],
  ])('400 with one line: %s', async (_label, path) => {
    const response = await get(path);
    expect(response.status).toBe(400);
    expect((await response.text()).trimEnd().split('\n')).toHaveLength(1);
    expectUntrustedHeaders(response);
  });

  it('404 for a path the DAG does not hold', async () => {
    const response = await get(`/ipfs/${root}/missing.txt`);
    expect(response.status).toBe(404);
    expect(await response.text()).toBe(`no such path below /ipfs/${root}\n`);
  });

  it('405 for other methods', async () => {
    const response = await get(`/ipfs/${root}/hello.txt`, {}, 'POST');
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
  });

  it('leaves other paths to the next handler', async () => {
    expect((await get('/ipfsx/abc')).status).toBe(418);
    expect((await get('/api/runs')).status).toBe(418);
  });
});

// Keeps the raw node:http client in use for a request fetch() would rewrite (a path with "..").
it('never lets ".." climb out of /ipfs/', async () => {
  const status = await new Promise<number>((resolve, reject) => {
    httpRequest(`${base}/ipfs/${root}/%2e%2e/%2e%2e/api/runs`, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });
  expect([400, 418]).toContain(status);
});

describe('a large file to a slow reader', () => {
  it('holds about one window of the file, not the file, while the client does not read', { timeout: 120_000 }, async () => {
    // Before the file was read a window at a time, the exporter read every block of the range as
    // fast as the store answered: 256 MiB to a paused client grew the process by 278 MiB (26 MiB after).
    const size = 96 * 1024 * 1024;
    const folder = join(dir, 'slow');
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'large.bin'), bytes(size, 'large'));
    const added = await store.addPath(folder);
    const slowStore = store;
    const slowGateway = createIpfsGateway({ blocks: slowStore, access: async () => 'public', tokens: [], log: pino({ level: 'silent' }) });
    const slowServer = createServer((req, res) => void slowGateway(req, res));
    await new Promise<void>((resolve) => slowServer.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = slowServer.address() as AddressInfo;
      global.gc?.();
      const idle = process.memoryUsage().rss;
      let peak = idle;
      const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 25);
      let received = 0;
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: `/ipfs/${added.cid}/large.bin` }, (res) => {
          res.pause();
          setTimeout(() => {
            res.on('data', (chunk: Buffer) => (received += chunk.length));
            res.on('end', resolve);
            res.resume();
          }, 2000);
        });
        req.on('error', reject);
        req.end();
      });
      clearInterval(sample);
      expect(received).toBe(size);
      expect((peak - idle) / 2 ** 20).toBeLessThan(64);
    } finally {
      await new Promise((resolve) => slowServer.close(resolve));
    }
  });
});
