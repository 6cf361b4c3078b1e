/**
 * A local stand-in for download.kiwix.org: a small real ZIM file (written by zim-writer.ts, its
 * text compressed by the real zstd program), served the way Kiwix serves its books — an
 * Apache-style listing of `<mirror>/<project>/`, the `.zim` file and its `.sha256` beside it.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { wikiZim, zimCompressorsAvailable } from './zim-writer.js';

/**
 * Whether the programs the ZIM writer compresses with (zstd, xz) are installed. In CI (CI=true)
 * their absence fails the run; elsewhere the suite skips with a loud message, as the other
 * integration tests do.
 */
export function zimToolsAvailable(): boolean {
  const tools = zimCompressorsAvailable();
  if (tools.ok) return true;
  const message = `this test needs ${tools.missing.join(' and ')} to write ZIM files; run scripts/test-deps.sh`;
  if (process.env.CI === 'true') throw new Error(`${message} (CI=true: failing instead of skipping)`);
  console.warn(`\n!!! SKIPPING: ${message}.\n`);
  return false;
}

/** A small wiki of `pages` pages (a welcome page linking the others) as a ZIM file. */
export function makeZim(options: { title: string; pages: number }): Buffer {
  return wikiZim({ title: options.title, pages: Math.max(0, options.pages - 1) });
}

export interface KiwixStandIn {
  /** Base URL to give kiwix/zim as `mirror`, ending in `/zim/`. */
  mirror: string;
  /** Paths requested so far, oldest first. */
  requests: string[];
  close(): Promise<void>;
}

function listing(project: string, files: string[]): string {
  const rows = files.map((f) => `<tr><td><a href="${f}">${f}</a></td><td align="right">2024-06-01 10:00</td></tr>`);
  return `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html><head><title>Index of /zim/${project}</title></head><body><h1>Index of /zim/${project}</h1>
<table><tr><th><a href="?C=N;O=D">Name</a></th></tr><tr><td><a href="/zim/">Parent Directory</a></td></tr>
${rows.join('\n')}
</table></body></html>`;
}

/**
 * Serves `books` (file name → ZIM bytes) under `/zim/<project>/` on 127.0.0.1, each with its
 * `.sha256` as `sha256sum` writes it, and the folder's listing.
 */
export async function startKiwixStandIn(project: string, books: Record<string, Buffer>): Promise<KiwixStandIn> {
  const routes = new Map<string, Buffer>();
  const names: string[] = [];
  for (const [name, body] of Object.entries(books)) {
    routes.set(`/zim/${project}/${name}`, body);
    routes.set(`/zim/${project}/${name}.sha256`, Buffer.from(`${createHash('sha256').update(body).digest('hex')}  ${name}\n`));
    names.push(name, `${name}.sha256`);
  }
  routes.set(`/zim/${project}/`, Buffer.from(listing(project, names)));
  const requests: string[] = [];
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://stand-in').pathname;
    requests.push(path);
    const body = routes.get(path);
    if (!body) {
      response.writeHead(404).end('not found');
      return;
    }
    response.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    mirror: `http://127.0.0.1:${port}/zim/`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
