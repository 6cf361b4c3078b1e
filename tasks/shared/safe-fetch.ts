/**
 * A guarded HTTP(S) GET for task types that fetch what a manifest names (README "Declaring
 * tasks": they refuse private addresses). Each hop's host is resolved once, every address it
 * resolves to is vetted, and the socket connects to exactly those vetted addresses, so a DNS
 * answer that changes between check and connect (DNS rebinding) cannot reach an internal host.
 */
import { createHash, type Hash } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { createWriteStream } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PermanentError, RetryableError } from '../../src/ports/errors.js';

/** The fetch would reach an address the deployment does not allow (private, loopback…). */
export class RefusedAddressError extends PermanentError {
  override readonly name = 'RefusedAddressError';
}

/** The URL (or a redirect's target) is not one a task may fetch: bad scheme, credentials… */
export class RefusedUrlError extends PermanentError {
  override readonly name = 'RefusedUrlError';
}

export class TooManyRedirectsError extends PermanentError {
  override readonly name = 'TooManyRedirectsError';
}

/** Resolves a host name to all of its addresses; injectable for tests. */
export type ResolveHost = (hostname: string) => Promise<LookupAddress[]>;

export interface FetchGuardOptions {
  /** Allow loopback, private and link-local targets (TaskSettings.allowPrivateAddresses). */
  allowPrivateAddresses: boolean;
  /** Redirects followed before giving up (default 5). */
  maxRedirects?: number;
  /** Socket idle time after which a request fails (default 60 s). */
  idleTimeoutMs?: number;
  /** Sent with every request. */
  userAgent?: string;
  resolveHost?: ResolveHost;
}

export interface GetOptions {
  signal?: AbortSignal;
  /** Extra request headers (names as they should be sent). */
  headers?: Record<string, string>;
  /**
   * `follow` (default) follows up to maxRedirects redirects; `manual` returns a 3xx response
   * as it is, for crawlers that record each hop and decide themselves where to go.
   */
  redirect?: 'follow' | 'manual';
  /**
   * Called with each redirect response before it is followed, e.g. to write it to a WARC. Its
   * body may be read; whatever is left is discarded once the returned promise settles.
   */
  onRedirect?: (hop: GuardedResponse) => Promise<void> | void;
}

/** The request as it went on the wire, for WARC request records. */
export interface SentRequest {
  method: 'GET';
  url: URL;
  /** Request target, e.g. `/a/b?c`. */
  path: string;
  /** Header name/value pairs in sending order, Host first. */
  headers: [string, string][];
}

export interface GuardedResponse {
  /** URL this response answers (the final URL after redirects). */
  url: URL;
  status: number;
  statusText: string;
  /** e.g. `1.1` */
  httpVersion: string;
  /** Lower-cased header names, as Node parses them. */
  headers: IncomingHttpHeaders;
  /** Header name/value pairs as the server sent them (case and order kept). */
  rawHeaders: [string, string][];
  /** The body, streamed; consume or destroy it. Transfer-Encoding is already decoded. */
  body: Readable;
  /** The vetted address the connection went to. */
  remoteAddress: string | undefined;
  request: SentRequest;
  /** URLs that redirected here, in order (empty when none). */
  redirectedFrom: URL[];
}

const DEFAULT_MAX_REDIRECTS = 5;
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
const DEFAULT_USER_AGENT = 'task-mgmt (+https://github.com/apps/task-mgmt)';
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

const resolveAll: ResolveHost = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) => (error ? reject(error) : resolve(addresses)));
  });

/**
 * One guard per task run: `get(url)` resolves, vets, connects to the vetted address, follows
 * redirects (vetting each hop) and returns the streamed response.
 */
export class FetchGuard {
  private readonly allowPrivate: boolean;
  private readonly maxRedirects: number;
  private readonly idleTimeoutMs: number;
  private readonly userAgent: string;
  private readonly resolveHost: ResolveHost;

  constructor(options: FetchGuardOptions) {
    this.allowPrivate = options.allowPrivateAddresses;
    this.maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
    if (!Number.isInteger(this.maxRedirects) || this.maxRedirects < 0) throw new TypeError('maxRedirects must be a non-negative integer');
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
    this.resolveHost = options.resolveHost ?? resolveAll;
  }

  async get(url: string | URL, options: GetOptions = {}): Promise<GuardedResponse> {
    const redirectedFrom: URL[] = [];
    let current = checkUrl(url);
    for (;;) {
      const response = await this.getOnce(current, options);
      response.redirectedFrom = [...redirectedFrom];
      const location = response.headers.location;
      if (options.redirect === 'manual' || !REDIRECT_STATUSES.has(response.status) || location === undefined) return response;
      try {
        if (options.onRedirect) await options.onRedirect(response);
      } finally {
        response.body.destroy();
      }
      redirectedFrom.push(current);
      if (redirectedFrom.length > this.maxRedirects) {
        throw new TooManyRedirectsError(`too many redirects (${redirectedFrom.length}), the limit is ${this.maxRedirects}: last from ${current.href}`);
      }
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new RefusedUrlError(`redirect from ${current.href} to an invalid URL: ${location}`);
      }
      current = checkUrl(next, `redirect from ${current.href}`);
    }
  }

  /**
   * Resolves the host and returns its addresses if every one of them may be fetched; throws
   * RefusedAddressError otherwise (one bad address refuses the host: an attacker controls the
   * order of the answers).
   */
  async vetHost(hostname: string): Promise<LookupAddress[]> {
    const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
    const family = isIP(bare);
    let addresses: LookupAddress[];
    if (family !== 0) {
      addresses = [{ address: bare, family }];
    } else {
      try {
        addresses = await this.resolveHost(bare);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        const message = `cannot resolve ${bare}: ${code ?? String(error)}`;
        throw code === 'ENOTFOUND' ? new PermanentError(message, { cause: error }) : new RetryableError(message, { cause: error });
      }
      if (addresses.length === 0) throw new PermanentError(`cannot resolve ${bare}: no addresses`);
    }
    if (!this.allowPrivate) {
      for (const { address } of addresses) {
        const reason = forbiddenAddressReason(address);
        if (reason) {
          const via = family === 0 ? ` (resolved from ${bare})` : '';
          throw new RefusedAddressError(`refused: ${address} is ${reason}${via}`);
        }
      }
    }
    return addresses;
  }

  private async getOnce(url: URL, options: GetOptions): Promise<GuardedResponse> {
    options.signal?.throwIfAborted();
    const addresses = await this.vetHost(url.hostname);
    options.signal?.throwIfAborted();

    const hostHeader = url.host;
    const headers: [string, string][] = [
      ['Host', hostHeader],
      ['User-Agent', this.userAgent],
      ['Accept', '*/*'],
      // Identity, so the bytes stored are the bytes a checksum was published for.
      ['Accept-Encoding', 'identity'],
      ['Connection', 'close'],
    ];
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      const index = headers.findIndex(([existing]) => existing.toLowerCase() === name.toLowerCase());
      if (index >= 0) headers[index] = [name, value];
      else headers.push([name, value]);
    }
    const path = `${url.pathname}${url.search}`;
    const request: SentRequest = { method: 'GET', url, path, headers };

    const pinned: LookupFunction = (_hostname, lookupOptions, callback) => {
      // Node asks for all addresses when it races IPv4 and IPv6 (autoSelectFamily).
      const wanted = lookupOptions.family === 4 || lookupOptions.family === 6 ? addresses.filter((a) => a.family === lookupOptions.family) : addresses;
      const list = wanted.length > 0 ? wanted : addresses;
      if (lookupOptions.all) (callback as (err: null, addresses: LookupAddress[]) => void)(null, list);
      else callback(null, list[0]!.address, list[0]!.family);
    };

    const requestOptions: RequestOptions = {
      method: 'GET',
      protocol: url.protocol,
      hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
      port: url.port || undefined,
      path,
      headers: Object.fromEntries(headers),
      lookup: pinned,
      agent: false,
      signal: options.signal,
    };
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;

    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      let received: IncomingMessage | undefined;
      const req = send(requestOptions, (res) => {
        received = res;
        resolve(res);
      });
      // The socket's idle timer covers the body too: a stalled download fails instead of hanging.
      req.setTimeout(this.idleTimeoutMs, () => {
        const error = new RetryableError(`timed out: ${url.host} sent nothing for ${Math.round(this.idleTimeoutMs / 1000)} s`);
        if (received) received.destroy(error);
        req.destroy(error);
      });
      req.once('error', (error) => reject(wrapNetworkError(error, url)));
      req.end();
    });

    const rawHeaders: [string, string][] = [];
    for (let i = 0; i + 1 < response.rawHeaders.length; i += 2) rawHeaders.push([response.rawHeaders[i]!, response.rawHeaders[i + 1]!]);
    return {
      url,
      status: response.statusCode ?? 0,
      statusText: response.statusMessage ?? '',
      httpVersion: response.httpVersion,
      headers: response.headers,
      rawHeaders,
      body: response,
      remoteAddress: response.socket.remoteAddress,
      request,
      redirectedFrom: [],
    };
  }
}

/** A body grew past the caller's limit; the download stopped there. */
export class BodyTooLargeError extends PermanentError {
  override readonly name = 'BodyTooLargeError';
}

export interface SaveBodyOptions {
  signal?: AbortSignal;
  /** Stop with BodyTooLargeError once more than this many bytes arrived. */
  maxBytes?: number;
  /** Called after each chunk with the bytes written so far (throttle on the caller's side). */
  onBytes?: (bytes: number) => void;
  /** Also fed every chunk, e.g. a WARC block digest already fed the HTTP header block. */
  extraHash?: Hash;
}

export interface SavedBody {
  bytes: number;
  /** Hex SHA-256 of the body. */
  sha256: string;
}

/**
 * Streams a response body into a file, hashing as it goes: memory stays flat whatever the size.
 * Rejects on abort, on a body past maxBytes, and on a body shorter than its Content-Length.
 */
export async function saveBody(response: GuardedResponse, path: string, options: SaveBodyOptions = {}): Promise<SavedBody> {
  const hash = createHash('sha256');
  const { maxBytes, onBytes, extraHash } = options;
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (maxBytes !== undefined && bytes > maxBytes) {
        callback(new BodyTooLargeError(`${response.url.href} is larger than the limit of ${maxBytes} bytes; stopped after ${bytes} bytes`));
        return;
      }
      hash.update(chunk);
      extraHash?.update(chunk);
      onBytes?.(bytes);
      callback(null, chunk);
    },
  });
  await pipeline(response.body, meter, createWriteStream(path), options.signal ? { signal: options.signal } : {});
  const announced = contentLength(response);
  if (announced !== undefined && announced !== bytes) {
    throw new RetryableError(`${response.url.href} ended after ${bytes} of ${announced} bytes`);
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** The Content-Length a response announced, if it is a valid number. */
export function contentLength(response: Pick<GuardedResponse, 'headers'>): number | undefined {
  const value = response.headers['content-length'];
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/** Parses a URL a task was given and refuses what it may never fetch. */
export function checkUrl(url: string | URL, context = 'URL'): URL {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : url;
  } catch {
    throw new RefusedUrlError(`not a URL: ${String(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new RefusedUrlError(`refused: ${context} uses ${parsed.protocol.replace(/:$/, '')}, only http and https may be fetched`);
  }
  if (parsed.username || parsed.password) throw new RefusedUrlError(`refused: ${context} carries credentials`);
  return parsed;
}

function wrapNetworkError(error: Error, url: URL): Error {
  if (error.name === 'AbortError' || error instanceof PermanentError || error instanceof RetryableError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  return new RetryableError(`fetching ${url.href} failed: ${code ?? error.message}`, { cause: error });
}

/* ---------------------------------------------------------------- address classification */

interface Range {
  /** Network address as a bigint of the family's width. */
  base: bigint;
  prefix: number;
  reason: string;
}

const V4_RANGES: Range[] = [
  v4('0.0.0.0', 8, 'an unspecified address'),
  v4('10.0.0.0', 8, 'a private address'),
  v4('100.64.0.0', 10, 'a shared (carrier-grade NAT) address'),
  v4('127.0.0.0', 8, 'a loopback address'),
  v4('169.254.0.0', 16, 'a link-local address'),
  v4('172.16.0.0', 12, 'a private address'),
  v4('192.0.0.0', 24, 'a reserved address'),
  v4('192.168.0.0', 16, 'a private address'),
  v4('198.18.0.0', 15, 'a reserved address'),
  v4('224.0.0.0', 4, 'a multicast address'),
  v4('240.0.0.0', 4, 'a reserved address'),
];

const V6_RANGES: Range[] = [
  v6('::', 128, 'an unspecified address'),
  v6('::1', 128, 'a loopback address'),
  v6('fc00::', 7, 'a private address'),
  v6('fe80::', 10, 'a link-local address'),
  v6('fec0::', 10, 'a private address'),
  v6('ff00::', 8, 'a multicast address'),
];

/** IPv6 forms that carry an IPv4 address in their last 32 bits. */
const V6_EMBEDDING_V4: Range[] = [
  v6('::ffff:0:0', 96, 'IPv4-mapped'),
  v6('::', 96, 'IPv4-compatible'),
  v6('64:ff9b::', 96, 'NAT64'),
];

/**
 * Why an address may not be fetched (`a private address`, …), or undefined when it is a public
 * unicast address. Accepts IPv4 and IPv6 text forms, including IPv4-mapped IPv6.
 */
export function forbiddenAddressReason(address: string): string | undefined {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return matchRange(V4_RANGES, parseV4(bare)!, 32);
  if (family !== 6) return 'not an IP address';
  const value = parseV6(bare);
  if (value === undefined) return 'not an IP address';
  const own = matchRange(V6_RANGES, value, 128);
  if (own) return own;
  for (const embedding of V6_EMBEDDING_V4) {
    if (inRange(embedding, value, 128)) {
      const embedded = value & 0xffffffffn;
      const reason = matchRange(V4_RANGES, embedded, 32);
      if (reason) return `${reason} (${embedding.reason} ${formatV4(embedded)})`;
    }
  }
  return undefined;
}

function matchRange(ranges: Range[], value: bigint, width: number): string | undefined {
  return ranges.find((range) => inRange(range, value, width))?.reason;
}

function inRange(range: Range, value: bigint, width: number): boolean {
  const shift = BigInt(width - range.prefix);
  return value >> shift === range.base >> shift;
}

function v4(address: string, prefix: number, reason: string): Range {
  return { base: parseV4(address)!, prefix, reason };
}

function v6(address: string, prefix: number, reason: string): Range {
  return { base: parseV6(address)!, prefix, reason };
}

function parseV4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = (value << 8n) | BigInt(Number(part));
  }
  return value;
}

function formatV4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

function parseV6(text: string): bigint | undefined {
  let groups: number[] = [];
  let head = text;
  // A trailing dotted IPv4 (::ffff:10.0.0.1) counts as two groups.
  const dotted = /(?:^|:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tail: number[] = [];
  if (dotted) {
    const value = parseV4(dotted[1]!);
    if (value === undefined) return undefined;
    tail = [Number(value >> 16n), Number(value & 0xffffn)];
    head = text.slice(0, text.length - dotted[1]!.length);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((group) => (/^[0-9a-f]{1,4}$/i.test(group) ? parseInt(group, 16) : NaN)));
  const left = parse(halves[0]!);
  const right = halves.length === 2 ? parse(halves[1]!) : [];
  const known = left.length + right.length + tail.length;
  if (halves.length === 2) {
    if (known > 7) return undefined;
    groups = [...left, ...new Array<number>(8 - known).fill(0), ...right, ...tail];
  } else {
    groups = [...left, ...tail];
  }
  if (groups.length !== 8 || groups.some((group) => Number.isNaN(group))) return undefined;
  return groups.reduce((value, group) => (value << 16n) | BigInt(group), 0n);
}
