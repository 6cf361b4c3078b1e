/**
 * The fake Kubo's own behaviour, checked over plain HTTP as the Kubo RPC reference describes it:
 * if the fake drifts from Kubo, the Kubo backend's tests would prove nothing.
 */
import { CarWriter } from '@ipld/car';
import * as dagPb from '@ipld/dag-pb';
import { UnixFS } from 'ipfs-unixfs';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeKubo } from './fake-kubo.js';
import { multipartParts } from './multipart.js';

let kubo: FakeKubo;

beforeAll(async () => {
  kubo = await FakeKubo.start();
});

afterAll(async () => {
  await kubo.close();
});

interface Block {
  cid: CID;
  bytes: Uint8Array;
}

async function rawBlock(text: string): Promise<Block> {
  const bytes = new TextEncoder().encode(text);
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes };
}

/** A UnixFS folder linking the given raw blocks by name (CIDv1). */
async function folder(entries: Record<string, Block>): Promise<Block> {
  const links = Object.entries(entries)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, block]) => ({ Name: name, Hash: block.cid, Tsize: block.bytes.byteLength }));
  const bytes = dagPb.encode({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: links });
  return { cid: CID.createV1(dagPb.code, await sha256.digest(bytes)), bytes };
}

async function car(roots: CID[], blocks: Block[]): Promise<Uint8Array> {
  const { writer, out } = CarWriter.create(roots);
  const collected = (async () => {
    const parts: Uint8Array[] = [];
    for await (const part of out) parts.push(part);
    return Buffer.concat(parts);
  })();
  for (const block of blocks) await writer.put(block);
  await writer.close();
  return collected;
}

/** One RPC call as curl would make it: `POST /api/v0/<command>?<query>`, files as multipart parts. */
async function rpc(command: string, query: Record<string, string | string[]> = {}, files: Uint8Array[] = [], method = 'POST') {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) for (const one of [value].flat()) search.append(key, one);
  let body: FormData | undefined;
  if (files.length > 0) {
    body = new FormData();
    for (const file of files) body.append('file', new Blob([file]), 'upload.car');
  }
  const response = await fetch(`${kubo.url}/api/v0/${command}?${search}`, { method, ...(body ? { body } : {}) });
  const text = Buffer.from(await response.arrayBuffer());
  return { status: response.status, type: response.headers.get('content-type'), text: text.toString(), bytes: text };
}

function lines(text: string): unknown[] {
  return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as unknown);
}

describe('the RPC conventions', () => {
  it('takes POST only, and answers 404 for a command it does not serve', async () => {
    expect(await rpc('pin/ls', {}, [], 'GET')).toMatchObject({ status: 405 });
    expect(await rpc('swarm/peers')).toMatchObject({ status: 404, text: '404 page not found\n' });
  });

  it('answers errors in Kubo’s shape: HTTP 500 with Code 0, or 400 with Code 1 for a malformed call', async () => {
    const notPinned = await rpc('pin/ls', { arg: 'bafkqaaa', type: 'recursive' });
    expect(notPinned).toMatchObject({ status: 500, type: 'application/json' });
    expect(JSON.parse(notPinned.text)).toStrictEqual({ Message: "path 'bafkqaaa' is not pinned", Code: 0, Type: 'error' });

    const noArgument = await rpc('cat');
    expect(noArgument.status).toBe(400);
    expect(JSON.parse(noArgument.text)).toStrictEqual({ Message: 'argument "ipfs-path" is required', Code: 1, Type: 'error' });

    const badFlag = await rpc('pin/add', { arg: 'bafkqaaa', recursive: 'maybe' });
    expect(badFlag.status).toBe(400);
    expect(JSON.parse(badFlag.text)).toMatchObject({ Code: 1, Type: 'error' });

    const noFile = await rpc('dag/import');
    expect(noFile.status).toBe(400);
    expect(JSON.parse(noFile.text)).toStrictEqual({ Message: "file argument 'path' is required", Code: 1, Type: 'error' });
  });

  it('fails the next call of a command on request, then serves again', async () => {
    kubo.failNext('pin/ls', 'injected');
    expect(JSON.parse((await rpc('pin/ls')).text)).toStrictEqual({ Message: 'injected', Code: 0, Type: 'error' });
    expect((await rpc('pin/ls')).status).toBe(200);
  });
});

describe('dag/import', () => {
  it('stores every block and pins the header roots by default, reporting each root', async () => {
    const a = await rawBlock(`a ${Math.random()}`);
    const root = await folder({ 'a.txt': a });
    const answer = await rpc('dag/import', { stats: 'true' }, [await car([root.cid], [root, a])]);
    expect(answer.status).toBe(200);
    expect(lines(answer.text)).toStrictEqual([
      { Root: { Cid: { '/': root.cid.toString() }, PinErrorMsg: '' } },
      { Stats: { BlockCount: 2, BlockBytesCount: root.bytes.byteLength + a.bytes.byteLength } },
    ]);
    expect(kubo.hasBlock(a.cid) && kubo.hasBlock(root.cid)).toBe(true);
    expect(kubo.pins()).toContainEqual({ cid: root.cid, type: 'recursive' });
  });

  it('with pin-roots=false stores the blocks, pins nothing and reports nothing', async () => {
    const a = await rawBlock(`unpinned ${Math.random()}`);
    const answer = await rpc('dag/import', { 'pin-roots': 'false' }, [await car([a.cid], [a])]);
    expect(answer).toMatchObject({ status: 200, text: '' });
    expect(kubo.hasBlock(a.cid)).toBe(true);
    expect(kubo.pins().some((pin) => pin.cid.equals(a.cid))).toBe(false);
  });

  it('reports a root whose DAG is incomplete with its pin error', async () => {
    const missing = await rawBlock(`never sent ${Math.random()}`);
    const root = await folder({ gone: missing });
    const answer = await rpc('dag/import', {}, [await car([root.cid], [root])]);
    expect(lines(answer.text)).toStrictEqual([
      { Root: { Cid: { '/': root.cid.toString() }, PinErrorMsg: `block was not found locally (offline): ipld: could not find ${missing.cid}` } },
    ]);
  });

  it('refuses a block that does not hash to its CID', async () => {
    const good = await rawBlock('honest');
    const forged = { cid: good.cid, bytes: new TextEncoder().encode('forged') };
    const answer = await rpc('dag/import', { 'pin-roots': 'false' }, [await car([good.cid], [forged])]);
    expect(answer.status).toBe(500);
    expect(JSON.parse(answer.text)).toStrictEqual({ Message: `block ${good.cid} does not match its hash: mismatch in content integrity`, Code: 0, Type: 'error' });
  });

  it('refuses a block over 1 MiB unless allow-big-block, and a CAR without roots', async () => {
    const big = new Uint8Array(1024 * 1024 + 1);
    const block = { cid: CID.createV1(raw.code, await sha256.digest(big)), bytes: big };
    const refused = await rpc('dag/import', { 'pin-roots': 'false' }, [await car([block.cid], [block])]);
    expect(JSON.parse(refused.text).Message).toContain('produced block is over 1MiB');
    expect((await rpc('dag/import', { 'pin-roots': 'false', 'allow-big-block': 'true' }, [await car([block.cid], [block])])).status).toBe(200);

    const rootless = await rpc('dag/import', {}, [await car([], [await rawBlock('no roots')])]);
    expect(JSON.parse(rootless.text)).toStrictEqual({ Message: 'invalid header: empty car, no roots', Code: 0, Type: 'error' });
  });
});

describe('pins', () => {
  it('pin/add pins recursively by default and pin/ls lists by type, indirect ones included', async () => {
    const leaf = await rawBlock(`leaf ${Math.random()}`);
    const root = await folder({ leaf });
    await rpc('dag/import', { 'pin-roots': 'false' }, [await car([root.cid], [root, leaf])]);

    expect(lines((await rpc('pin/add', { arg: `/ipfs/${root.cid}` })).text)).toStrictEqual([{ Pins: [root.cid.toString()] }]);
    expect(lines((await rpc('pin/ls', { arg: root.cid.toString(), type: 'recursive' })).text)).toStrictEqual([
      { Keys: { [root.cid.toString()]: { Type: 'recursive', Name: '' } } },
    ]);
    expect(lines((await rpc('pin/ls', { arg: leaf.cid.toString(), stream: 'true' })).text)).toStrictEqual([
      { Cid: leaf.cid.toString(), Name: '', Type: `indirect through ${root.cid}` },
    ]);
    const notDirect = await rpc('pin/ls', { arg: leaf.cid.toString(), type: 'recursive' });
    expect(JSON.parse(notDirect.text).Message).toBe(`path '${leaf.cid}' is not pinned`);
  });

  it('pin/add of a DAG with a block it lacks fails, as Kubo offline does', async () => {
    const root = await folder({ gone: await rawBlock(`absent ${Math.random()}`) });
    await rpc('dag/import', { 'pin-roots': 'false' }, [await car([root.cid], [root])]);
    const answer = await rpc('pin/add', { arg: root.cid.toString() });
    expect(answer.status).toBe(500);
    expect(JSON.parse(answer.text).Message).toMatch(/^block was not found locally \(offline\)/);
  });
});

describe('reading back', () => {
  it('cat walks UnixFS by path, with offset and length; block/get answers a block', async () => {
    const text = await rawBlock(`hello from the fake ${Math.random()}`);
    const root = await folder({ 'hello.txt': text });
    await rpc('dag/import', {}, [await car([root.cid], [root, text])]);

    expect((await rpc('cat', { arg: `/ipfs/${root.cid}/hello.txt` })).text).toBe(new TextDecoder().decode(text.bytes));
    expect((await rpc('cat', { arg: `${root.cid}/hello.txt`, offset: '6', length: '4' })).text).toBe('from');
    expect((await rpc('block/get', { arg: root.cid.toString() })).bytes.equals(Buffer.from(root.bytes))).toBe(true);

    const folderCat = await rpc('cat', { arg: root.cid.toString() });
    expect(JSON.parse(folderCat.text)).toStrictEqual({ Message: 'this dag node is a directory', Code: 0, Type: 'error' });
    const missing = await rpc('cat', { arg: `${root.cid}/nope.txt` });
    expect(missing.status).toBe(500);
  });

  it('cat of a UnixFS symlink answers the link’s target, never what it points to', async () => {
    const link = dagPb.encode({ Data: new UnixFS({ type: 'symlink', data: new TextEncoder().encode('/etc/passwd') }).marshal(), Links: [] });
    const block = { cid: CID.createV0(await sha256.digest(link)), bytes: link };
    await rpc('dag/import', {}, [await car([block.cid], [block])]);
    expect((await rpc('cat', { arg: block.cid.toString() })).text).toBe('/etc/passwd');
  });
});

describe('multipart bodies', () => {
  it('reads binary parts with or without a filename, whatever the chunking', async () => {
    const binary = Buffer.from([0, 13, 10, 45, 45, 255, 13, 10]);
    const body = Buffer.concat([
      Buffer.from('preamble\r\n--XyZ\r\nContent-Disposition: form-data; name="file"\r\nContent-Type: application/octet-stream\r\n\r\n'),
      binary,
      Buffer.from('\r\n--XyZ\r\nContent-Disposition: form-data; name="file-1"; filename="a%2Fb.car"\r\n\r\n'),
      Buffer.from('second'),
      Buffer.from('\r\n--XyZ--\r\n'),
    ]);
    for (const size of [1, 2, 7, body.length]) {
      async function* chunks() {
        for (let at = 0; at < body.length; at += size) yield body.subarray(at, at + size);
      }
      const parts: Array<{ name?: string; filename?: string; bytes: Buffer }> = [];
      for await (const part of multipartParts(chunks(), 'XyZ')) {
        const collected: Uint8Array[] = [];
        for await (const chunk of part.content) collected.push(chunk);
        parts.push({ ...(part.name ? { name: part.name } : {}), ...(part.filename ? { filename: part.filename } : {}), bytes: Buffer.concat(collected) });
      }
      expect(parts, `chunks of ${size}`).toStrictEqual([
        { name: 'file', bytes: binary },
        { name: 'file-1', filename: 'a/b.car', bytes: Buffer.from('second') },
      ]);
    }
  });

  it('a CAR sent as a part without a filename is imported too', async () => {
    const block = await rawBlock(`nameless ${Math.random()}`);
    const bytes = await car([block.cid], [block]);
    const body = Buffer.concat([Buffer.from('--b\r\nContent-Disposition: form-data; name="file"\r\n\r\n'), bytes, Buffer.from('\r\n--b--\r\n')]);
    const response = await fetch(`${kubo.url}/api/v0/dag/import?pin-roots=false`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=b' }, body });
    expect(response.status).toBe(200);
    expect(kubo.hasBlock(block.cid)).toBe(true);
  });
});
