/**
 * The guarded HTTP(S) GET behind every task type's `ctx.fetch` (README "Security model": task
 * types refuse private addresses). Each hop's host is resolved once, every address it resolves to
 * is vetted, and the socket connects to exactly those vetted addresses, so a DNS answer that
 * changes between check and connect (DNS rebinding) cannot reach an internal host. Only the
 * worker builds one (src/worker/tasks/); task types get it in their context and import no
 * network module themselves (`npm run boundaries`).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { PermanentError, RetryableError } from '../../src/ports/errors.js';
import type { FetchOptions, FetchedResponse, SentRequest, TaskFetch } from '../../src/ports/task-type.js';

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
  /** Skip the address check: any address may be fetched (TaskSettings.allowPrivateAddresses, tests only). */
  allowPrivateAddresses: boolean;
  /** Redirects followed before giving up (default 5). */
  maxRedirects?: number;
  /** Socket idle time after which a request fails (default 60 s). */
  idleTimeoutMs?: number;
  /** Sent with every request. */
  userAgent?: string;
  resolveHost?: ResolveHost;
}

export type GetOptions = FetchOptions;
export type GuardedResponse = FetchedResponse;

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
export class FetchGuard implements TaskFetch {
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

/** Why an address outside `unicast` is refused, by ipaddr.js range name. */
const RANGE_REASONS: Record<string, string> = {
  unspecified: 'an unspecified address',
  broadcast: 'a broadcast address',
  multicast: 'a multicast address',
  linkLocal: 'a link-local address',
  loopback: 'a loopback address',
  carrierGradeNat: 'a shared (carrier-grade NAT) address',
  private: 'a private address',
  uniqueLocal: 'a private address',
  deprecatedSiteLocal: 'a site-local address',
  reserved: 'a reserved address',
  // IPv6 prefixes that reach an IPv4 address through a relay or translator: refused whatever
  // IPv4 address they embed, so no decoding can be got wrong.
  '6to4': 'a 6to4 address (2002::/16)',
  teredo: 'a Teredo address (2001::/32)',
  rfc6052: 'a NAT64 address (64:ff9b::/96, 64:ff9b:1::/48)',
  rfc6145: 'an IPv4-translated address (::ffff:0:0:0/96)',
};

/**
 * Why an address may not be fetched (`a private address`, …), or undefined when it is a public
 * unicast address: ipaddr.js's `range()` must be `unicast`. IPv4-mapped IPv6 (::ffff:a.b.c.d)
 * is judged as its IPv4 address; IPv4-compatible IPv6 (::a.b.c.d, deprecated), 6to4, Teredo
 * and NAT64 are refused outright.
 */
export function forbiddenAddressReason(address: string): string | undefined {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  // Node's strict check first: ipaddr.js also accepts forms like `127.1` or `0x7f.0.0.1`.
  const family = isIP(bare);
  if (family === 0) return 'not an IP address';
  // IPv6 goes through the URL parser's canonical (all-hex) form first: ipaddr.js reads any
  // dotted tail as IPv4-mapped, so `::8.8.8.8` (IPv4-compatible) would pass as `::ffff:8.8.8.8`.
  const canonical = family === 6 ? new URL(`http://[${bare}]/`).hostname.slice(1, -1) : bare;
  let parsed: ipaddr.IPv4 | ipaddr.IPv6 = ipaddr.parse(canonical);
  let mapped = '';
  if (parsed instanceof ipaddr.IPv6) {
    if (parsed.isIPv4MappedAddress()) {
      parsed = parsed.toIPv4Address();
      mapped = ` (IPv4-mapped ${parsed.toString()})`;
    } else if (parsed.parts.slice(0, 6).every((part) => part === 0) && parsed.range() === 'unicast') {
      return 'an IPv4-compatible address (::/96)';
    }
  }
  const range = parsed.range();
  if (range === 'unicast') return undefined;
  return `${RANGE_REASONS[range] ?? `a special-purpose address (${range})`}${mapped}`;
}
