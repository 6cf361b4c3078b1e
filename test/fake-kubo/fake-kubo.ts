/**
 * A Kubo RPC API server for tests: a real HTTP server on 127.0.0.1 that answers the commands the
 * app calls (`dag/import`, `pin/add`, `pin/ls`, `pin/rm`) plus `cat` and `block/get` to read back, the way
 * Kubo's RPC reference describes them (README.md beside this file says which version). Blocks
 * live in memory, each checked against its CID as it arrives; `cat` walks UnixFS over them.
 * It never touches a network: a block it lacks is an error, as on a Kubo started with --offline.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as dagJson from '@ipld/dag-json';
import * as dagPb from '@ipld/dag-pb';
import { CarBlockIterator } from '@ipld/car/iterator';
import { UnixFS } from 'ipfs-unixfs';
import { exporter } from 'ipfs-unixfs-exporter';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { MultipartError, multipartBoundary, multipartParts, type MultipartPart } from './multipart.js';

/** Kubo's limit on one block without `allow-big-block` (boxo's 1 MiB soft limit, inclusive). */
export const BLOCK_SIZE_LIMIT = 1024 * 1024;

const SHA2_256 = 0x12;
const IDENTITY = 0x00;

export interface FakeKuboRequest {
  method: string;
  /** The command, e.g. `dag/import` (the path after /api/v0/). */
  command: string;
  query: URLSearchParams;
  status: number;
}

export interface PinEntry {
  cid: CID;
  type: 'recursive' | 'direct';
}

/** An error the way Kubo's command library answers it: `{"Message","Code","Type":"error"}`. */
class CommandError extends Error {
  /** 0 is Kubo's ErrNormal (HTTP 500), 1 its ErrClient (HTTP 400). */
  constructor(
    message: string,
    readonly code: 0 | 1 = 0,
  ) {
    super(message);
  }
}

interface Fault {
  command: string;
  message: string;
  code: 0 | 1;
}

type Handler = (query: URLSearchParams, req: IncomingMessage, res: ServerResponse) => Promise<void>;

export class FakeKubo {
  readonly requests: FakeKuboRequest[] = [];
  /** Blocks by the bytes of their multihash, so a CIDv0 and its CIDv1 form are one block, as in Kubo. */
  private readonly blocks = new Map<string, { cid: CID; bytes: Uint8Array }>();
  private readonly pinsByHash = new Map<string, PinEntry>();
  private readonly faults: Fault[] = [];
  private readonly handlers: Record<string, Handler> = {
    'dag/import': (query, req, res) => this.dagImport(query, req, res),
    'pin/add': (query, _req, res) => this.pinAdd(query, res),
    'pin/ls': (query, _req, res) => this.pinLs(query, res),
    'pin/rm': (query, _req, res) => this.pinRm(query, res),
    cat: (query, _req, res) => this.cat(query, res),
    'block/get': (query, _req, res) => this.blockGet(query, res),
  };

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeKubo> {
    let fake: FakeKubo | undefined;
    const server = createServer((req, res) => {
      void fake?.handle(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    fake = new FakeKubo(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return fake;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The next call of `command` fails with Kubo's error shape and this message (HTTP 500), before reading its body. */
  failNext(command: string, message: string): void {
    this.faults.push({ command, message, code: 0 });
  }

  hasBlock(cid: CID | string): boolean {
    return this.blocks.has(hashKey(toCid(cid)));
  }

  /** Keeps `bytes` under `cid` unchecked, as a corrupted repository would hold them: for tests of readers that must verify. */
  corruptBlock(cid: CID | string, bytes: Uint8Array): void {
    const key = toCid(cid);
    this.blocks.set(hashKey(key), { cid: key, bytes });
  }

  get blockCount(): number {
    return this.blocks.size;
  }

  /** Every block held, as `{cid, bytes}` under the CID it arrived with. */
  storedBlocks(): Array<{ cid: CID; bytes: Uint8Array }> {
    return [...this.blocks.values()];
  }

  pins(): PinEntry[] {
    return [...this.pinsByHash.values()];
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const command = url.pathname.startsWith('/api/v0/') ? url.pathname.slice('/api/v0/'.length) : '';
    const record: FakeKuboRequest = { method: req.method ?? '', command, query: url.searchParams, status: 0 };
    this.requests.push(record);
    const handler = Object.hasOwn(this.handlers, command) ? this.handlers[command] : undefined;
    try {
      if (handler === undefined) {
        plain(res, 404, '404 page not found\n');
      } else if (req.method !== 'POST') {
        // The RPC API is POST-only since Kubo 0.5 (a GET could be forged by any web page).
        plain(res, 405, '405 - Method Not Allowed\n');
      } else {
        const fault = this.takeFault(command);
        if (fault) throw new CommandError(fault.message, fault.code);
        await handler(url.searchParams, req, res);
      }
    } catch (error) {
      if (!res.headersSent) {
        const failure = error instanceof CommandError ? error : new CommandError(String((error as Error).message ?? error));
        const status = failure.code === 1 ? 400 : 500;
        res.writeHead(status, { 'Content-Type': 'application/json', 'X-Chunked-Output': '1' });
        res.end(`${JSON.stringify({ Message: failure.message, Code: failure.code, Type: 'error' })}\n`);
      } else {
        res.destroy();
      }
    } finally {
      record.status = res.statusCode;
    }
  }

  private takeFault(command: string): Fault | undefined {
    const index = this.faults.findIndex((fault) => fault.command === command);
    return index === -1 ? undefined : this.faults.splice(index, 1)[0];
  }

  /**
   * `dag/import`: every file part of the multipart body is a CARv1. Blocks are stored as they are
   * read, each verified against its CID; then, unless `pin-roots=false`, each header root is pinned
   * recursively and reported as `{"Root":{"Cid":{"/":…},"PinErrorMsg":…}}`; `stats=true` adds
   * `{"Stats":{"BlockCount","BlockBytesCount"}}`.
   */
  private async dagImport(query: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const pinRoots = bool(query, 'pin-roots', true);
    const stats = bool(query, 'stats', false);
    const silent = bool(query, 'silent', false);
    const allowBigBlock = bool(query, 'allow-big-block', false);
    const roots: CID[] = [];
    let blockCount = 0;
    let blockBytes = 0;
    // Blocks are verified and stored as they arrive, as Kubo imports while it reads.
    for await (const car of fileParts(req, 'path')) {
      let blocks: CarBlockIterator;
      try {
        blocks = await CarBlockIterator.fromIterable(car.content);
      } catch (error) {
        throw new CommandError(`cannot read the CAR header: ${(error as Error).message}`);
      }
      const header = await blocks.getRoots();
      // go-car, which Kubo reads CARs with, refuses a header without roots.
      if (header.length === 0) throw new CommandError('invalid header: empty car, no roots');
      roots.push(...header);
      for await (const { cid, bytes } of blocks) {
        if (bytes.byteLength > BLOCK_SIZE_LIMIT && !allowBigBlock) {
          throw new CommandError(`produced block is over 1MiB: big blocks can't be exchanged with other peers. consider using UnixFS for automatic chunking of bigger files, or pass --allow-big-block to override`);
        }
        verifyBlock(cid, bytes);
        this.blocks.set(hashKey(cid), { cid, bytes });
        blockCount += 1;
        blockBytes += bytes.byteLength;
      }
    }
    const lines: unknown[] = [];
    if (pinRoots) {
      for (const root of roots) {
        let pinErrorMsg = '';
        try {
          this.pinRecursively(root);
        } catch (error) {
          pinErrorMsg = (error as Error).message;
        }
        lines.push({ Root: { Cid: { '/': root.toString() }, PinErrorMsg: pinErrorMsg } });
      }
    }
    if (stats) lines.push({ Stats: { BlockCount: blockCount, BlockBytesCount: blockBytes } });
    ndjson(res, silent ? [] : lines);
  }

  /** `pin/add`: pins each `arg` (recursively unless `recursive=false`), answering `{"Pins":[…]}`. */
  private async pinAdd(query: URLSearchParams, res: ServerResponse): Promise<void> {
    const paths = args(query, 'ipfs-path');
    const recursive = bool(query, 'recursive', true);
    const progress = bool(query, 'progress', false);
    const pinned: string[] = [];
    for (const path of paths) {
      const cid = await this.resolve(path);
      if (recursive) this.pinRecursively(cid);
      else {
        this.requireBlock(cid);
        const existing = this.pinsByHash.get(hashKey(cid));
        if (existing?.type === 'recursive') throw new CommandError(`pin: ${cid} already pinned recursively`);
        this.pinsByHash.set(hashKey(cid), { cid, type: 'direct' });
      }
      pinned.push(cid.toString());
    }
    ndjson(res, progress ? [{ Progress: pinned.length }, { Pins: pinned }] : [{ Pins: pinned }]);
  }

  /**
   * `pin/rm`: removes each `arg`'s pin (a recursive one only with `recursive`, the default),
   * answering `{"Pins":[…]}`; a CID not pinned that way fails as Kubo's "not pinned or pinned
   * indirectly". The blocks stay until a GC, which this fake never runs.
   */
  private async pinRm(query: URLSearchParams, res: ServerResponse): Promise<void> {
    const recursive = bool(query, 'recursive', true);
    const removed: string[] = [];
    for (const path of args(query, 'ipfs-path')) {
      const cid = await this.resolve(path);
      const pin = this.pinsByHash.get(hashKey(cid));
      if (pin === undefined) throw new CommandError(`${cid} is not pinned or pinned indirectly`);
      if (pin.type === 'recursive' && !recursive) throw new CommandError(`${cid} is pinned recursively`);
      this.pinsByHash.delete(hashKey(cid));
      removed.push(cid.toString());
    }
    ndjson(res, [{ Pins: removed }]);
  }

  /**
   * `pin/ls`: with `arg`s, each must be pinned as `type` asks (`all` by default, `indirect`
   * meaning reachable from a recursive pin) or the call fails with "is not pinned"; without, every
   * pin of that type. `stream=true` answers one `{"Cid","Name","Type"}` a line, otherwise `{"Keys":{…}}`.
   */
  private async pinLs(query: URLSearchParams, res: ServerResponse): Promise<void> {
    const type = query.get('type') ?? 'all';
    if (!['direct', 'indirect', 'recursive', 'all'].includes(type)) {
      throw new CommandError(`invalid type '${type}', must be one of {direct, indirect, recursive, all}`);
    }
    const stream = bool(query, 'stream', false);
    const quiet = bool(query, 'quiet', false);
    const found: Array<{ cid: string; type: string }> = [];
    const paths = query.getAll('arg');
    if (paths.length > 0) {
      for (const path of paths) {
        const cid = await this.resolve(path);
        const how = this.pinType(cid, type);
        if (how === undefined) throw new CommandError(`path '${path}' is not pinned`);
        found.push({ cid: cid.toString(), type: how });
      }
    } else {
      for (const pin of this.pinsByHash.values()) {
        if (type === 'all' || type === pin.type) found.push({ cid: pin.cid.toString(), type: pin.type });
      }
    }
    if (stream) ndjson(res, found.map((pin) => ({ Cid: pin.cid, Name: '', Type: quiet ? '' : pin.type })));
    else ndjson(res, [{ Keys: Object.fromEntries(found.map((pin) => [pin.cid, { Type: quiet ? '' : pin.type, Name: '' }])) }]);
  }

  /** `cat`: a file's bytes (a symlink's target, which boxo reads as a file), from `offset`, at most `length`. */
  private async cat(query: URLSearchParams, res: ServerResponse): Promise<void> {
    const path = args(query, 'ipfs-path')[0]!;
    const offset = int(query, 'offset');
    const length = int(query, 'length');
    if (offset !== undefined && offset < 0) throw new CommandError('cannot specify negative offset');
    if (length !== undefined && length < 0) throw new CommandError('cannot specify negative length');
    const entry = await this.entry(path);
    if (entry.type === 'directory') throw new CommandError('this dag node is a directory');
    if (entry.type !== 'file' && entry.type !== 'raw') throw new CommandError('operation not supported');
    const options = { ...(offset !== undefined ? { offset } : {}), ...(length !== undefined ? { length } : {}) };
    const content = entry.type === 'file' && entry.unixfs.type === 'symlink' ? symlinkTarget(entry.unixfs, options) : entry.content(options);
    // Read the first chunk before answering, so a missing block is still an error, not a cut stream.
    const iterator = content[Symbol.asyncIterator]();
    const first = await iterator.next();
    res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Stream-Output': '1', Trailer: 'X-Stream-Error' });
    if (!first.done) res.write(first.value);
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) res.write(next.value);
    res.end();
  }

  /** `block/get`: one block's bytes as stored. */
  private async blockGet(query: URLSearchParams, res: ServerResponse): Promise<void> {
    const cid = await this.resolve(args(query, 'cid')[0]!);
    const bytes = this.requireBlock(cid);
    res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Stream-Output': '1' });
    res.end(bytes);
  }

  private pinRecursively(root: CID): void {
    // Kubo walks the whole DAG before recording the pin: a missing block fails the pin.
    for (const _ of this.walk(root)) {
      // every block present
    }
    this.pinsByHash.set(hashKey(root), { cid: root, type: 'recursive' });
  }

  /** How `cid` is pinned, within what `wanted` asks for, in pin/ls's words. */
  private pinType(cid: CID, wanted: string): string | undefined {
    const pin = this.pinsByHash.get(hashKey(cid));
    if (pin && (wanted === 'all' || wanted === pin.type)) return pin.type;
    if (wanted !== 'all' && wanted !== 'indirect') return undefined;
    for (const other of this.pinsByHash.values()) {
      if (other.type !== 'recursive' || other.cid.equals(cid)) continue;
      for (const reached of this.walk(other.cid)) {
        if (!reached.equals(other.cid) && equalHash(reached, cid)) return `indirect through ${other.cid}`;
      }
    }
    return undefined;
  }

  /** Every CID of the DAG under `root`, root first; throws on the first block not held. */
  private *walk(root: CID): Generator<CID> {
    const stack = [root];
    while (stack.length > 0) {
      const cid = stack.pop()!;
      const bytes = this.requireBlock(cid);
      yield cid;
      if (cid.code === dagPb.code) {
        const links = dagPb.decode(bytes).Links;
        for (let i = links.length - 1; i >= 0; i--) stack.push(links[i]!.Hash);
      } else if (cid.code === dagJson.code) {
        stack.push(...linksIn(dagJson.decode(bytes)).reverse());
      } else if (cid.code !== raw.code) {
        throw new CommandError(`this fake walks only dag-pb, dag-json and raw blocks, not codec 0x${cid.code.toString(16)}`);
      }
    }
  }

  private requireBlock(cid: CID): Uint8Array {
    // An identity CID carries its block inline.
    if (cid.multihash.code === IDENTITY) return cid.multihash.digest;
    const block = this.blocks.get(hashKey(cid));
    if (block === undefined) throw new CommandError(`block was not found locally (offline): ipld: could not find ${cid}`);
    return block.bytes;
  }

  /** `/ipfs/<cid>[/path]` or `<cid>[/path]` → the CID at the end of the path. */
  private async resolve(path: string): Promise<CID> {
    return (await this.entry(path)).cid;
  }

  private async entry(path: string) {
    const trimmed = path.replace(/^\/ipfs\//, '');
    const [first] = trimmed.split('/');
    try {
      CID.parse(first ?? '');
    } catch (error) {
      throw new CommandError(`invalid path "${path}": ${(error as Error).message}`);
    }
    const blockstore = {
      // The exporter reads blocks as streams; a missing one is Kubo's offline "not found".
      get: (cid: CID) => {
        const bytes = this.requireBlock(cid);
        return (function* () {
          yield bytes;
        })();
      },
    };
    try {
      return await exporter(trimmed, blockstore);
    } catch (error) {
      if (error instanceof CommandError) throw error;
      const name = (error as Error).name;
      if (name === 'NotFoundError') throw new CommandError(`no link named "${trimmed.split('/').slice(1).join('/')}" under ${first}`);
      throw new CommandError((error as Error).message);
    }
  }
}

/** The file parts of a multipart/form-data body, streamed in order (Kubo reads every part as one file argument). */
async function* fileParts(req: IncomingMessage, argument: string): AsyncGenerator<MultipartPart> {
  const boundary = multipartBoundary(req.headers['content-type']);
  if (boundary === undefined) throw new CommandError(`file argument '${argument}' is required`, 1);
  let count = 0;
  try {
    for await (const part of multipartParts(req, boundary)) {
      count += 1;
      yield part;
    }
  } catch (error) {
    if (error instanceof MultipartError) throw new CommandError(error.message, 1);
    throw error;
  }
  if (count === 0) throw new CommandError(`file argument '${argument}' is required`, 1);
}

function verifyBlock(cid: CID, bytes: Uint8Array): void {
  const { code, digest } = cid.multihash;
  let actual: Uint8Array;
  if (code === SHA2_256) actual = createHash('sha256').update(bytes).digest();
  else if (code === IDENTITY) actual = bytes;
  else throw new CommandError(`block ${cid}: this fake verifies only sha2-256 and identity multihashes`);
  if (Buffer.compare(Buffer.from(actual), Buffer.from(digest)) !== 0) {
    throw new CommandError(`block ${cid} does not match its hash: mismatch in content integrity`);
  }
}

async function* symlinkTarget(unixfs: UnixFS, options: { offset?: number; length?: number }): AsyncGenerator<Uint8Array> {
  const target = unixfs.data ?? new Uint8Array();
  const start = options.offset ?? 0;
  yield target.subarray(start, options.length === undefined ? undefined : start + options.length);
}

function args(query: URLSearchParams, name: string): string[] {
  const values = query.getAll('arg');
  if (values.length === 0) throw new CommandError(`argument "${name}" is required`, 1);
  return values;
}

/** Kubo's boolean options: absent is the default, an empty value is true (as `?stats` alone). */
function bool(query: URLSearchParams, name: string, fallback: boolean): boolean {
  const value = query.get(name);
  if (value === null) return fallback;
  if (value === '' || value.toLowerCase() === 'true') return true;
  if (value.toLowerCase() === 'false') return false;
  throw new CommandError(`Could not convert value "${value}" to type "bool" (for option "-${name}")`, 1);
}

function int(query: URLSearchParams, name: string): number | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  if (!/^-?\d+$/.test(value)) throw new CommandError(`Could not convert value "${value}" to type "int64" (for option "-${name}")`, 1);
  return Number(value);
}

function ndjson(res: ServerResponse, lines: unknown[]): void {
  res.writeHead(200, { 'Content-Type': 'application/json', 'X-Chunked-Output': '1', Trailer: 'X-Stream-Error' });
  res.end(lines.map((line) => `${JSON.stringify(line)}\n`).join(''));
}

function plain(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(text);
}

function hashKey(cid: CID): string {
  return Buffer.from(cid.multihash.bytes).toString('base64');
}

function equalHash(a: CID, b: CID): boolean {
  return hashKey(a) === hashKey(b);
}

function toCid(cid: CID | string): CID {
  return typeof cid === 'string' ? CID.parse(cid) : cid;
}

/** The links of a decoded DAG-JSON value (`{"/": "<cid>"}`, decoded as CIDs), in document order. */
function linksIn(value: unknown): CID[] {
  const cid = CID.asCID(value);
  if (cid) return [cid];
  if (Array.isArray(value)) return value.flatMap(linksIn);
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) return Object.values(value).flatMap(linksIn);
  return [];
}
