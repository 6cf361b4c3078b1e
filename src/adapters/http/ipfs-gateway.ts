/**
 * The app's own IPFS gateway, `GET|HEAD /ipfs/<cid>[/<path>]` (README "Fetching outputs"),
 * following the Path Gateway and Trustless Gateway specifications
 * (https://specs.ipfs.tech/http-gateways/path-gateway/, …/trustless-gateway/):
 * - `Accept: application/vnd.ipld.raw` or `?format=raw`: one block, byte for byte;
 * - `Accept: application/vnd.ipld.car` or `?format=car`: a CARv1 of the path's blocks and the DAG
 *   at its end (`dag-scope`, `entity-bytes`, `dups`), streamed depth first;
 * - otherwise the content itself: a file (type guessed, `Range` honoured), a folder's
 *   `index.html`, or an HTML listing of the folder.
 * Answers are immutable (`ETag` from the CID, `Cache-Control: … immutable`, `If-None-Match` → 304).
 *
 * It serves only what `access` allows: blocks under a live pin, of runs the caller may read. The
 * caller is who the `Authorization: Bearer` token says, as for the JSON API, or nobody. Whatever
 * is not served is answered 404 with the same line, so a private output's existence shows nowhere.
 * Outputs are strangers' files on the app's own origin: every answer carries `nosniff` and
 * `Content-Security-Policy: sandbox`, so task-written HTML cannot run script as the app, and the
 * handler reads no cookie.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import * as dagCbor from '@ipld/dag-cbor';
import * as dagJson from '@ipld/dag-json';
import { exporter, walkPath, type ReadableStorage, type UnixFSEntry } from 'ipfs-unixfs-exporter';
import type { CID } from 'multiformats/cid';
import * as jsonCodec from 'multiformats/codecs/json';
import * as raw from 'multiformats/codecs/raw';
import type { IpfsBlockReader } from '../../ports/ipfs-store.js';
import type { HttpHandler } from './api-handler.js';
import { ApiError, createAuthenticator, requestUrl, type ApiActor, type UserTokenResolver } from './http-io.js';
import { carBlocks, isIdentity, writeCar, type Block } from './ipfs-gateway-car.js';
import { guessContentType, sniffBytes } from './ipfs-gateway-content-type.js';
import { listingVersion, maxListedEntries, renderListing, type ListedEntry } from './ipfs-gateway-listing.js';
import { GatewayRequestError, matchesEtag, parseGatewayRequest, parseRange, type CarRequest, type GatewayRequest } from './ipfs-gateway-request.js';

/**
 * Whether a caller may have the DAG below `cid`: 'public' when anyone may (it is cached as
 * public), 'restricted' when only this caller may (cached privately), 'not-found' otherwise — not
 * pinned, or not the caller's to read; the two are never told apart.
 */
export type ContentAccess = 'public' | 'restricted' | 'not-found';
/** `actor` is null for a request without a token. */
export type GatewayAccess = (cid: CID, actor: ApiActor | null) => Promise<ContentAccess>;

export interface IpfsGatewayDeps {
  blocks: IpfsBlockReader;
  access: GatewayAccess;
  /** Service tokens (API_TOKENS), as the JSON API takes them. */
  tokens: readonly string[];
  /** Accepts GitHub user tokens too, as that user. */
  resolveUser?: UserTokenResolver;
  log: Pick<Logger, 'error' | 'warn'>;
}

/** Sent with every answer under /ipfs/, errors included. */
const untrustedContentHeaders = {
  'x-content-type-options': 'nosniff',
  // No allow-scripts, no allow-same-origin: a page served here is an opaque origin that cannot run script.
  'content-security-policy': 'sandbox',
} as const;

const immutable = 'max-age=29030400, immutable';

/** A block the DAG links to is not in the store. */
class MissingBlockError extends Error {
  override readonly name = 'MissingBlockError';
  constructor(readonly cid: CID) {
    super(`block ${cid.toString()} is not stored`);
  }
}

/** A 404 whose line is safe to show whoever asked. */
class NotServedError extends Error {
  override readonly name = 'NotServedError';
}

export function createIpfsGateway(deps: IpfsGatewayDeps): HttpHandler {
  const authenticate = createAuthenticator(deps.tokens, deps.resolveUser);

  /** The caller, from the bearer token alone (cookies are never read here); null without one. */
  async function actorOf(req: IncomingMessage): Promise<ApiActor | null> {
    return req.headers.authorization === undefined ? null : authenticate(req);
  }

  async function serve(req: IncomingMessage, res: ServerResponse, url: URL, signal: AbortSignal): Promise<void> {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      throw new GatewayRequestError(405, `${method} is not allowed here; use GET or HEAD`);
    }
    if (url.pathname === '/ipfs' || url.pathname === '/ipfs/') throw new GatewayRequestError(400, 'give a CID: /ipfs/<cid>[/<path>]');
    // Path Gateway spec: a service worker may not claim the gateway's paths.
    if (req.headers['service-worker'] === 'script') throw new GatewayRequestError(400, 'service workers cannot be registered from /ipfs/');
    const request = parseGatewayRequest(url, req.headers.accept);
    const actor = await actorOf(req);

    if (isIdentity(request.cid)) return serveIdentity(req, res, request, url);

    const access = await deps.access(request.cid, actor);
    if (access === 'not-found') throw notHere(request.cid, req);

    const reads = new RequestBlocks(deps.blocks, signal);
    const roots = await resolvePath(request, reads, signal);
    const terminal = roots.at(-1)!;
    reads.recording = false;
    const headers: Record<string, string> = {
      'x-ipfs-path': request.contentPath,
      'x-ipfs-roots': roots.map(String).join(','),
      'cache-control': `${access === 'public' ? 'public' : 'private'}, ${immutable}`,
      vary: 'Accept',
    };
    if (request.negotiated) headers['content-location'] = withFormat(url, request.format.kind);

    switch (request.format.kind) {
      case 'raw': {
        const etag = `"${terminal.toString()}.raw"`;
        if (notModified(req, res, etag, headers)) return;
        const bytes = await reads.get(terminal);
        headers['content-type'] = 'application/vnd.ipld.raw';
        headers['content-disposition'] = disposition('attachment', request.filename ?? `${terminal.toString()}.bin`);
        return sendBytes(req, res, { ...headers, etag }, bytes);
      }
      case 'car':
        return serveCar(req, res, request, request.format, reads, terminal, headers);
      case 'plain':
        return servePlain(req, res, url, request, reads, terminal, headers, signal);
    }
  }

  async function serveCar(
    req: IncomingMessage,
    res: ServerResponse,
    request: GatewayRequest,
    car: CarRequest,
    reads: RequestBlocks,
    terminal: CID,
    headers: Record<string, string>,
  ): Promise<void> {
    const range = car.entityBytes ? `.bytes-${car.entityBytes.from}-${car.entityBytes.to}` : '';
    const etag = `"${terminal.toString()}.car.${car.scope}${range}${car.dups ? '.dups' : ''}"`;
    if (notModified(req, res, etag, headers)) return;
    // The block at the end of the path must be here before a 200 is promised (Trustless Gateway spec, 404).
    await reads.get(terminal);
    res.writeHead(200, {
      ...untrustedContentHeaders,
      ...headers,
      etag,
      'content-type': `application/vnd.ipld.car; version=1; order=dfs; dups=${car.dups ? 'y' : 'n'}`,
      'content-disposition': disposition('attachment', request.filename ?? `${terminal.toString()}.car`),
      'accept-ranges': 'none',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    await writeCar(res, terminal, carBlocks(reads.read, terminal, car, (cid) => reads.get(cid)));
  }

  async function servePlain(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    request: GatewayRequest,
    reads: RequestBlocks,
    terminal: CID,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<void> {
    const entry = await exporter(terminal, reads.storage, { signal });
    if (entry.type === 'directory') {
      if (!request.trailingSlash) {
        // Path Gateway spec: a folder's URL ends with "/", so relative links in its pages resolve inside it.
        res.writeHead(301, { ...untrustedContentHeaders, location: `${url.pathname}/${url.search}`, 'cache-control': headers['cache-control']! });
        res.end();
        return;
      }
      const index = await indexPage(terminal, reads, signal);
      if (index) return serveFile(req, res, request, index, 'index.html', headers, signal);
      const etag = `"DirIndex-${listingVersion}_CID-${terminal.toString()}"`;
      if (notModified(req, res, etag, headers)) return;
      const entries: ListedEntry[] = [];
      let truncated = false;
      for await (const child of entry.entries({ signal })) {
        if (entries.length === maxListedEntries) {
          truncated = true;
          break;
        }
        entries.push({ name: child.name, cid: child.cid.toString(), size: child.size });
      }
      const path = `/ipfs/${[request.cid.toString(), ...request.segments].join('/')}/`;
      const page = renderListing({ path, cid: terminal.toString(), entries, truncated, hasParent: request.segments.length > 0 });
      return sendBytes(req, res, { ...headers, etag, 'content-type': 'text/html; charset=utf-8' }, Buffer.from(page, 'utf8'));
    }
    const name = request.filename ?? request.segments.at(-1) ?? null;
    return serveFile(req, res, request, entry, name, headers, signal);
  }

  /** A file, a raw block or an identity CID as a file, a symlink as its target, a DAG-JSON/CBOR node as its bytes. */
  async function serveFile(
    req: IncomingMessage,
    res: ServerResponse,
    request: GatewayRequest,
    entry: Exclude<UnixFSEntry, { type: 'directory' }>,
    name: string | null,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<void> {
    const etag = `"${entry.cid.toString()}"`;
    if (notModified(req, res, etag, headers)) return;
    if (request.download) headers['content-disposition'] = disposition('attachment', name ?? entry.cid.toString());
    else if (request.filename !== null) headers['content-disposition'] = disposition('inline', request.filename);
    if (entry.type === 'object') {
      return sendBytes(req, res, { ...headers, etag, 'content-type': objectContentType(entry.cid) }, entry.node);
    }
    if (entry.type === 'file' && entry.unixfs.type === 'symlink') {
      return sendBytes(req, res, { ...headers, etag, 'content-type': 'text/plain; charset=utf-8' }, entry.unixfs.data ?? new Uint8Array());
    }
    const size = Number(entry.size);
    const head = await collect(entry.content({ offset: 0, length: Math.min(size, sniffBytes), signal }));
    const contentType = await guessContentType(name, head);
    return sendRange(req, res, { ...headers, etag, 'content-type': contentType }, size, (offset, length) => fileWindows(entry, offset, length, signal));
  }

  /** `bafkqaaa` and other raw identity CIDs: the bytes are the CID's own, so nothing is looked up and anyone may have them. */
  async function serveIdentity(req: IncomingMessage, res: ServerResponse, request: GatewayRequest, url: URL): Promise<void> {
    const cid = request.cid;
    if (cid.code !== raw.code || request.segments.length > 0) {
      throw new GatewayRequestError(400, 'only raw identity CIDs (such as bafkqaaa) are served, without a path');
    }
    const headers: Record<string, string> = {
      'x-ipfs-path': request.contentPath,
      'x-ipfs-roots': cid.toString(),
      'cache-control': `public, ${immutable}`,
      vary: 'Accept',
    };
    if (request.negotiated) headers['content-location'] = withFormat(url, request.format.kind);
    const bytes = cid.multihash.digest;
    if (request.format.kind === 'car') {
      const etag = `"${cid.toString()}.car.${request.format.scope}"`;
      if (notModified(req, res, etag, headers)) return;
      res.writeHead(200, {
        ...untrustedContentHeaders,
        ...headers,
        etag,
        'content-type': `application/vnd.ipld.car; version=1; order=dfs; dups=${request.format.dups ? 'y' : 'n'}`,
        'content-disposition': disposition('attachment', `${cid.toString()}.car`),
      });
      if (req.method === 'HEAD') return void res.end();
      return writeCar(res, cid, carBlocks([], cid, request.format, () => Promise.reject(new Error('identity blocks are never read'))));
    }
    const asBlock = request.format.kind === 'raw';
    const etag = asBlock ? `"${cid.toString()}.raw"` : `"${cid.toString()}"`;
    if (notModified(req, res, etag, headers)) return;
    headers['content-type'] = asBlock ? 'application/vnd.ipld.raw' : 'application/octet-stream';
    if (asBlock) headers['content-disposition'] = disposition('attachment', `${cid.toString()}.bin`);
    return sendBytes(req, res, { ...headers, etag }, bytes);
  }

  return async (req, res) => {
    const url = requestUrl(req);
    if (url.pathname !== '/ipfs' && !url.pathname.startsWith('/ipfs/')) return false;
    const stop = new AbortController();
    res.once('close', () => stop.abort());
    try {
      await serve(req, res, url, stop.signal);
    } catch (error) {
      if (res.headersSent) {
        // Mid-stream: the answer is cut short, which a client checking what it got will notice.
        if (!stop.signal.aborted && !(error instanceof MissingBlockError)) deps.log.error({ err: error, path: url.pathname }, 'IPFS gateway response failed');
        if (error instanceof MissingBlockError) deps.log.warn({ cid: error.cid.toString(), path: url.pathname }, 'a pinned DAG lacks a block');
        res.destroy();
      } else if (error instanceof GatewayRequestError) {
        sendLine(res, error.status, error.message);
      } else if (error instanceof ApiError && error.status === 401) {
        sendLine(res, 401, error.message, { 'www-authenticate': 'Bearer' });
      } else if (error instanceof NotServedError) {
        sendLine(res, 404, error.message);
      } else if (error instanceof MissingBlockError) {
        deps.log.warn({ cid: error.cid.toString(), path: url.pathname }, 'a pinned DAG lacks a block');
        sendLine(res, 404, `a block of /ipfs/${error.cid.toString()} is not stored here`);
      } else if (stop.signal.aborted) {
        res.destroy();
      } else {
        deps.log.error({ err: error, path: url.pathname }, 'IPFS gateway request failed');
        sendLine(res, 500, 'the gateway could not read this content; the error is logged');
      }
    }
    return true;
  };
}

/** The blocks one request reads, through the block reader; the first ones (resolving the path) are kept for the CAR. */
class RequestBlocks {
  /** Blocks read while `recording`, in order. */
  readonly read: Block[] = [];
  recording = true;
  readonly storage: ReadableStorage;

  constructor(
    private readonly blocks: IpfsBlockReader,
    private readonly signal: AbortSignal,
  ) {
    const get = (cid: CID) => this.get(cid);
    this.storage = {
      get: async function* (cid) {
        yield await get(cid);
      },
    };
  }

  async get(cid: CID): Promise<Uint8Array> {
    const bytes = await this.blocks.getBlock(cid.toString(), { signal: this.signal });
    if (bytes === null) throw new MissingBlockError(cid);
    if (this.recording) this.read.push({ cid, bytes });
    return bytes;
  }
}

/** The CIDs of the root and of each path segment's entry (`X-Ipfs-Roots`); the last is what the path names. */
async function resolvePath(request: GatewayRequest, reads: RequestBlocks, signal: AbortSignal): Promise<CID[]> {
  const roots: CID[] = [];
  try {
    for await (const entry of walkPath([request.cid.toString(), ...request.segments].join('/'), reads.storage, { signal })) roots.push(entry.cid);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_NOT_FOUND' || code === 'ERR_NOT_UNIXFS' || code === 'ERR_NO_RESOLVER' || code === 'ERR_BAD_PATH') {
      throw new NotServedError(`no such path below /ipfs/${request.cid.toString()}`);
    }
    throw error;
  }
  return roots;
}

/** A folder's `index.html`, which the Path Gateway spec serves in place of a listing. */
async function indexPage(folder: CID, reads: RequestBlocks, signal: AbortSignal): Promise<Exclude<UnixFSEntry, { type: 'directory' }> | null> {
  try {
    const entry = await exporter(`${folder.toString()}/index.html`, reads.storage, { signal });
    return entry.type === 'directory' ? null : entry;
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_NOT_FOUND') return null;
    throw error;
  }
}

function notHere(cid: CID, req: IncomingMessage): Error {
  // only-if-cached (Path Gateway spec): this gateway fetches nothing from elsewhere, so what it lacks is a 412.
  if (/\bonly-if-cached\b/.test(req.headers['cache-control'] ?? '')) return new GatewayRequestError(412, `/ipfs/${cid.toString()} is not held here`);
  return new NotServedError(`/ipfs/${cid.toString()} is not found here (this gateway serves only pinned outputs the caller may read)`);
}

function objectContentType(cid: CID): string {
  switch (cid.code) {
    case dagJson.code:
      return 'application/vnd.ipld.dag-json';
    case dagCbor.code:
      return 'application/vnd.ipld.dag-cbor';
    case jsonCodec.code:
      return 'application/json';
    default:
      return 'application/cbor';
  }
}

/** 304 when `If-None-Match` names the answer's ETag (Path Gateway spec). */
function notModified(req: IncomingMessage, res: ServerResponse, etag: string, headers: Record<string, string>): boolean {
  if (!matchesEtag(req.headers['if-none-match'], etag)) return false;
  res.writeHead(304, { ...untrustedContentHeaders, ...headers, etag });
  res.end();
  return true;
}

function sendBytes(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>, bytes: Uint8Array): Promise<void> {
  return sendRange(req, res, headers, bytes.byteLength, (offset, length) => [bytes.subarray(offset, offset + length)]);
}

/** The body, or the one range `Range` asks for (206), or 416 for a range past its end. */
/**
 * A file's bytes from `offset`, asked of the exporter 8 MiB at a time: given a whole range, it reads
 * the range's blocks as fast as the store answers, whatever the client takes, so a slow reader of a
 * large file would make the app hold most of it. A window at a time, at most one window is held.
 */
const fileWindowBytes = 8 * 1024 * 1024;

async function* fileWindows(entry: { content(options: { offset: number; length: number; signal: AbortSignal; blockReadConcurrency: number }): AsyncIterable<Uint8Array> }, offset: number, length: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const end = offset + length;
  for (let at = offset; at < end; at += fileWindowBytes) {
    yield* entry.content({ offset: at, length: Math.min(fileWindowBytes, end - at), signal, blockReadConcurrency: 4 });
  }
}

async function sendRange(
  req: IncomingMessage,
  res: ServerResponse,
  headers: Record<string, string>,
  size: number,
  read: (offset: number, length: number) => AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<void> {
  const range = parseRange(req.headers.range, size);
  if (range === 'unsatisfiable') {
    sendLine(res, 416, `the range is outside the ${size} bytes of this content`, { 'content-range': `bytes */${size}` });
    return;
  }
  const start = range?.start ?? 0;
  const length = range ? range.end - range.start + 1 : size;
  res.writeHead(range ? 206 : 200, {
    ...untrustedContentHeaders,
    ...headers,
    'accept-ranges': 'bytes',
    'content-length': String(length),
    ...(range ? { 'content-range': `bytes ${range.start}-${range.end}/${size}` } : {}),
  });
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    return;
  }
  await pipeline(Readable.from(read(start, length)), res);
}

function sendLine(res: ServerResponse, status: number, line: string, headers: Record<string, string> = {}): void {
  const body = `${line}\n`;
  res.writeHead(status, {
    ...untrustedContentHeaders,
    ...headers,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
  });
  res.end(body);
}

/** `Content-Disposition` with an ASCII fallback and the UTF-8 name (RFC 6266, RFC 8187), as the Path Gateway spec shows. */
function disposition(kind: 'inline' | 'attachment', filename: string): string {
  const name = filename.slice(0, 255);
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** The request's URL with `format` named, for `Content-Location` when the format came from `Accept`. */
function withFormat(url: URL, format: 'raw' | 'car' | 'plain'): string {
  const query = new URLSearchParams(url.searchParams);
  query.set('format', format);
  return `${url.pathname}?${query.toString()}`;
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}
