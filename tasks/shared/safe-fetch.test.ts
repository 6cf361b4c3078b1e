import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodyTooLargeError, saveBody } from './http-body.js';
import { FetchGuard, forbiddenAddressReason, RefusedAddressError, RefusedUrlError, TooManyRedirectsError } from './safe-fetch.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function listen(handler: Handler, host = '127.0.0.1'): Promise<{ server: Server; base: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return { server, base: `http://${host.includes(':') ? `[${host}]` : host}:${port}` };
}

describe('forbiddenAddressReason', () => {
  it.each([
    ['10.0.0.1', 'a private address'],
    ['172.16.5.4', 'a private address'],
    ['172.31.255.255', 'a private address'],
    ['192.168.1.1', 'a private address'],
    ['127.0.0.1', 'a loopback address'],
    ['127.9.9.9', 'a loopback address'],
    ['169.254.169.254', 'a link-local address'],
    ['0.0.0.0', 'an unspecified address'],
    ['224.0.0.251', 'a multicast address'],
    ['100.64.0.1', 'a shared (carrier-grade NAT) address'],
    ['255.255.255.255', 'a broadcast address'],
    ['240.0.0.1', 'a reserved address'],
    ['::', 'an unspecified address'],
    ['::1', 'a loopback address'],
    ['fc00::1', 'a private address'],
    ['fd12:3456::1', 'a private address'],
    ['fe80::1%eth0', 'a link-local address'],
    ['ff02::1', 'a multicast address'],
    ['::ffff:10.0.0.1', 'a private address (IPv4-mapped 10.0.0.1)'],
    ['::ffff:7f00:1', 'a loopback address (IPv4-mapped 127.0.0.1)'],
    ['64:ff9b::a9fe:a9fe', 'a NAT64 address (64:ff9b::/96, 64:ff9b:1::/48)'],
    ['64:ff9b::808:808', 'a NAT64 address (64:ff9b::/96, 64:ff9b:1::/48)'],
    ['2002:808:808::1', 'a 6to4 address (2002::/16)'],
    ['2001:db8::1', 'a reserved address'],
    ['fec0::1', 'a site-local address'],
    ['::8.8.8.8', 'an IPv4-compatible address (::/96)'],
    ['127.1', 'not an IP address'],
    ['nonsense', 'not an IP address'],
  ])('%s is %s', (address, reason) => {
    expect(forbiddenAddressReason(address)).toBe(reason);
  });

  it.each(['93.184.215.14', '172.32.0.1', '8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8', '2001:db9::1'])('%s is allowed', (address) => {
    expect(forbiddenAddressReason(address)).toBeUndefined();
  });
});

/** Addresses that are not public unicast, including IPv6 forms that carry a private IPv4. */
const refusedAddresses: [address: string, reason: string][] = [
  ['2002:7f00:1::1', 'a 6to4 address (2002::/16)'], // embeds 127.0.0.1
  ['2002:a00:1::1', 'a 6to4 address (2002::/16)'], // embeds 10.0.0.1
  ['64:ff9b::a00:1', 'a NAT64 address (64:ff9b::/96, 64:ff9b:1::/48)'], // embeds 10.0.0.1
  ['64:ff9b:1::1', 'a NAT64 address (64:ff9b::/96, 64:ff9b:1::/48)'], // local-use NAT64
  ['::ffff:127.0.0.1', 'a loopback address (IPv4-mapped 127.0.0.1)'],
  ['::ffff:10.0.0.1', 'a private address (IPv4-mapped 10.0.0.1)'],
  ['::a00:1', 'an IPv4-compatible address (::/96)'], // embeds 10.0.0.1
  ['2001:0::1', 'a Teredo address (2001::/32)'],
  ['fc00::1', 'a private address'],
  ['fe80::1', 'a link-local address'],
  ['::1', 'a loopback address'],
  ['0.0.0.0', 'an unspecified address'],
  ['100.64.0.1', 'a shared (carrier-grade NAT) address'],
  ['169.254.169.254', 'a link-local address'],
  ['192.0.0.1', 'a reserved address'],
  ['198.18.0.1', 'a reserved address'],
  ['224.0.0.1', 'a multicast address'],
  ['255.255.255.255', 'a broadcast address'],
  ['240.0.0.1', 'a reserved address'],
];
const allowedAddresses = ['8.8.8.8', '2606:4700:4700::1111'];

describe('address policy: only public unicast addresses', () => {
  it.each(refusedAddresses)('classifies %s as %s', (address, reason) => {
    expect(forbiddenAddressReason(address)).toBe(reason);
  });

  it.each(allowedAddresses)('classifies %s as allowed', (address) => {
    expect(forbiddenAddressReason(address)).toBeUndefined();
  });

  // The resolver aborts the request as it answers: a wrongly vetted address ends in AbortError
  // before any socket opens, so this sends no traffic whatever the verdict.
  it.each(refusedAddresses)('refuses to fetch from a host resolving to %s', async (address, reason) => {
    const controller = new AbortController();
    const guard = new FetchGuard({
      allowPrivateAddresses: false,
      resolveHost: async () => {
        controller.abort();
        return [{ address, family: address.includes(':') ? 6 : 4 }];
      },
    });
    const attempt = guard.get('http://target.test/', { signal: controller.signal });
    await expect(attempt).rejects.toBeInstanceOf(RefusedAddressError);
    await expect(attempt).rejects.toThrow(`refused: ${address} is ${reason} (resolved from target.test)`);
  });

  it.each(allowedAddresses)('lets a host resolving to %s through the vetting', async (address) => {
    const family = address.includes(':') ? 6 : 4;
    const guard = new FetchGuard({ allowPrivateAddresses: false, resolveHost: async () => [{ address, family }] });
    await expect(guard.vetHost('public.test')).resolves.toEqual([{ address, family }]);
  });

  it('allows every address when private addresses are allowed (tests only)', async () => {
    const guard = new FetchGuard({ allowPrivateAddresses: true, resolveHost: async () => [{ address: '2002:7f00:1::1', family: 6 }] });
    await expect(guard.vetHost('anything.test')).resolves.toEqual([{ address: '2002:7f00:1::1', family: 6 }]);
  });
});

describe('FetchGuard', () => {
  let site: { server: Server; base: string };
  let dir: string;
  const seen: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'safe-fetch-'));
    site = await listen((req, res) => {
      seen.push(req.url ?? '');
      const url = new URL(req.url ?? '/', 'http://x');
      const hops = Number(url.searchParams.get('hops') ?? '0');
      if (url.pathname === '/hop') {
        res.writeHead(302, { Location: hops > 1 ? `/hop?hops=${hops - 1}` : '/hello' }).end('moved');
      } else if (url.pathname === '/hello') {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Seen-Host': req.headers.host ?? '' }).end('hello world');
      } else if (url.pathname === '/to-ftp') {
        res.writeHead(301, { Location: 'ftp://example.org/file' }).end();
      } else if (url.pathname === '/short') {
        res.writeHead(200, { 'Content-Length': '100' });
        res.write('only a few bytes');
        setTimeout(() => res.destroy(), 20);
      } else if (url.pathname === '/slow') {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
        const timer = setInterval(() => res.write(Buffer.alloc(1024)), 10);
        res.on('close', () => clearInterval(timer));
      } else {
        res.writeHead(404).end('not found');
      }
    });
  });

  afterAll(async () => {
    site.server.closeAllConnections();
    await new Promise((resolve) => site.server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a loopback literal unless private addresses are allowed', async () => {
    const guard = new FetchGuard({ allowPrivateAddresses: false });
    await expect(guard.get(`${site.base}/hello`)).rejects.toThrow(new RefusedAddressError('refused: 127.0.0.1 is a loopback address'));
    const before = seen.length;
    await expect(guard.get(`${site.base}/hello`)).rejects.toBeInstanceOf(RefusedAddressError);
    expect(seen.length).toBe(before);
  });

  it('refuses a host when any of its addresses is private', async () => {
    const guard = new FetchGuard({
      allowPrivateAddresses: false,
      resolveHost: async () => [
        { address: '93.184.215.14', family: 4 },
        { address: '10.0.0.1', family: 4 },
      ],
    });
    await expect(guard.get('http://intranet.test/')).rejects.toThrow('refused: 10.0.0.1 is a private address (resolved from intranet.test)');
  });

  it('connects to the address it vetted, resolving each host once', async () => {
    const calls: string[] = [];
    const guard = new FetchGuard({
      allowPrivateAddresses: true,
      resolveHost: async (hostname) => {
        calls.push(hostname);
        return [{ address: '127.0.0.1', family: 4 }];
      },
    });
    const port = new URL(site.base).port;
    const response = await guard.get(`http://files.test:${port}/hello`);
    expect(response.status).toBe(200);
    expect(response.headers['x-seen-host']).toBe(`files.test:${port}`);
    expect(response.remoteAddress).toBe('127.0.0.1');
    expect(await text(response.body)).toBe('hello world');
    expect(calls).toEqual(['files.test']);
  });

  it('follows a redirect chain within the limit and reports each hop', async () => {
    const guard = new FetchGuard({ allowPrivateAddresses: true });
    const hops: number[] = [];
    const response = await guard.get(`${site.base}/hop?hops=5`, { onRedirect: (hop) => void hops.push(hop.status) });
    expect(response.status).toBe(200);
    expect(response.url.href).toBe(`${site.base}/hello`);
    expect(response.redirectedFrom).toHaveLength(5);
    expect(hops).toEqual([302, 302, 302, 302, 302]);
    expect(await text(response.body)).toBe('hello world');
  });

  it('gives up after too many redirects', async () => {
    const guard = new FetchGuard({ allowPrivateAddresses: true });
    const attempt = guard.get(`${site.base}/hop?hops=6`);
    await expect(attempt).rejects.toBeInstanceOf(TooManyRedirectsError);
    await expect(guard.get(`${site.base}/hop?hops=6`)).rejects.toThrow(/^too many redirects \(6\)/);
    await expect(new FetchGuard({ allowPrivateAddresses: true, maxRedirects: 1 }).get(`${site.base}/hop?hops=2`)).rejects.toThrow(/^too many redirects \(2\), the limit is 1/);
  });

  it('re-checks every hop, here by resolving each redirect target', async () => {
    const calls: string[] = [];
    const port = new URL(site.base).port;
    const redirector = await listen((_req, res) => res.writeHead(302, { Location: `http://second.test:${port}/hello` }).end());
    try {
      const guard = new FetchGuard({
        allowPrivateAddresses: true,
        resolveHost: async (hostname) => {
          calls.push(hostname);
          return [{ address: '127.0.0.1', family: 4 }];
        },
      });
      const response = await guard.get(`http://first.test:${new URL(redirector.base).port}/`);
      expect(await text(response.body)).toBe('hello world');
      expect(calls).toEqual(['first.test', 'second.test']);
    } finally {
      redirector.server.close();
    }
  });

  it('refuses schemes other than http and https, also as a redirect target', async () => {
    const guard = new FetchGuard({ allowPrivateAddresses: true });
    await expect(guard.get('file:///etc/passwd')).rejects.toThrow(new RefusedUrlError('refused: URL uses file, only http and https may be fetched'));
    await expect(guard.get(`${site.base}/to-ftp`)).rejects.toThrow(`refused: redirect from ${site.base}/to-ftp uses ftp, only http and https may be fetched`);
  });

  it('returns redirects as they are in manual mode', async () => {
    const guard = new FetchGuard({ allowPrivateAddresses: true });
    const response = await guard.get(`${site.base}/hop?hops=1`, { redirect: 'manual' });
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe('/hello');
    expect(response.request.headers[0]).toEqual(['Host', new URL(site.base).host]);
    response.body.destroy();
  });

  it('stops saving a body past maxBytes and detects a short body', async () => {
    const guard = new FetchGuard({ allowPrivateAddresses: true });
    const big = await guard.get(`${site.base}/slow`);
    await expect(saveBody(big, join(dir, 'big'), { maxBytes: 4096 })).rejects.toBeInstanceOf(BodyTooLargeError);
    const short = await guard.get(`${site.base}/short`);
    await expect(saveBody(short, join(dir, 'short'))).rejects.toThrow();
    const ok = await guard.get(`${site.base}/hello`);
    const saved = await saveBody(ok, join(dir, 'hello'));
    expect(saved).toEqual({ bytes: 11, sha256: 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9' });
    expect(await readFile(join(dir, 'hello'), 'utf8')).toBe('hello world');
  });

  it('stops promptly when aborted mid-body', async () => {
    const guard = new FetchGuard({ allowPrivateAddresses: true });
    const controller = new AbortController();
    const response = await guard.get(`${site.base}/slow`, { signal: controller.signal });
    const saving = saveBody(response, join(dir, 'slow'), { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const started = Date.now();
    await expect(saving).rejects.toThrow(/abort/i);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('fetches from an IPv6 loopback server', async (context) => {
    let v6: { server: Server; base: string };
    try {
      v6 = await listen((_req, res) => res.end('over v6'), '::1');
    } catch {
      context.skip();
      return;
    }
    try {
      await expect(new FetchGuard({ allowPrivateAddresses: false }).get(`${v6.base}/`)).rejects.toThrow('refused: ::1 is a loopback address');
      const response = await new FetchGuard({ allowPrivateAddresses: true }).get(`${v6.base}/`);
      expect(await text(response.body)).toBe('over v6');
    } finally {
      v6.server.close();
    }
  });
});
