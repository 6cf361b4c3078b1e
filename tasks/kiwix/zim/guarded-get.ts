/**
 * A streaming GET that refuses loopback, private and link-local addresses unless the deployment
 * allows them, and follows redirects (download.kiwix.org answers with a redirect to a mirror).
 * The address is checked when the socket connects, not only when the URL is read, so a name that
 * resolves to a public address once and a private one later (DNS rebinding) is still refused.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { PermanentError, RetryableError } from '../../../src/ports/errors.js';

const blocked = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const) {
  blocked.addSubnet(network, prefix, 'ipv6');
}

/** Whether an address is loopback, private, link-local, multicast or otherwise not public. */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return blocked.check(mapped[1]!, 'ipv4');
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) return blocked.check(address, 'ipv6');
  return true;
}

function refusal(host: string, address: string): PermanentError {
  return new PermanentError(
    `refused to fetch from ${host} (${address}): private, loopback and link-local addresses are not allowed`,
  );
}

/** dns.lookup, refusing private answers; passed to http.request so the check holds at connect time. */
function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, '', 0);
      const bad = allowPrivate ? undefined : addresses.find((a) => isPrivateAddress(a.address));
      if (bad) return callback(refusal(hostname, bad.address), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0];
      if (!first) return callback(new Error(`${hostname} has no address`), '', 0);
      callback(null, first.address, first.family);
    });
  };
}

export interface GuardedGetOptions {
  signal: AbortSignal;
  allowPrivateAddresses: boolean;
  maxRedirects?: number;
  /** Socket idle time after which the request fails as retryable. */
  idleTimeoutMs?: number;
}

export interface GuardedResponse {
  /** The URL that finally answered (after redirects). */
  url: string;
  response: http.IncomingMessage;
  /** Content-Length, when the server sent one. */
  length: number | undefined;
}

/** GET `url`; resolves once a 2xx response's headers arrive, with its body still unread. */
export async function guardedGet(url: string, options: GuardedGetOptions): Promise<GuardedResponse> {
  const maxRedirects = options.maxRedirects ?? 5;
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    const response = await requestOnce(current, options);
    const status = response.statusCode ?? 0;
    const location = response.headers.location;
    if (status >= 300 && status < 400 && location) {
      response.resume();
      if (hop >= maxRedirects) throw new PermanentError(`too many redirects fetching ${url}`);
      current = new URL(location, current);
      continue;
    }
    if (status >= 200 && status < 300) {
      const header = response.headers['content-length'];
      const length = header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;
      return { url: current.href, response, length };
    }
    response.resume();
    const message = `GET ${current.href} answered ${status}`;
    // 429 and 5xx are the server's trouble, and may pass; any other 4xx will not.
    if (status === 429 || status >= 500) throw new RetryableError(message);
    throw new PermanentError(message);
  }
}

function requestOnce(url: URL, options: GuardedGetOptions): Promise<http.IncomingMessage> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.reject(new PermanentError(`only http and https URLs can be fetched, not ${url.protocol}`));
  }
  // A literal IP never goes through lookup, so it is checked here.
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  if (!options.allowPrivateAddresses && isIP(literal) && isPrivateAddress(literal)) {
    return Promise.reject(refusal(url.hostname, literal));
  }
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.get(url, {
      signal: options.signal,
      lookup: guardedLookup(options.allowPrivateAddresses),
      headers: { 'user-agent': 'task-mgmt (kiwix/zim)' },
    });
    request.setTimeout(options.idleTimeoutMs ?? 60_000, () => {
      request.destroy(new RetryableError(`GET ${url.href}: no data for ${(options.idleTimeoutMs ?? 60_000) / 1000} s`));
    });
    request.once('response', resolve);
    request.once('error', (error) => {
      if (error instanceof PermanentError || error instanceof RetryableError || options.signal.aborted) {
        reject(error);
      } else {
        reject(new RetryableError(`GET ${url.href} failed: ${error.message}`, { cause: error }));
      }
    });
  });
}

/** Reads a small response body as text, refusing bodies above `maxBytes`. */
export async function readText(got: GuardedResponse, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of got.response as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      got.response.destroy();
      throw new PermanentError(`${got.url} is larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
