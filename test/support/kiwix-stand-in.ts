/**
 * A local stand-in for download.kiwix.org: a small real ZIM file made with zimwriterfs
 * (zim-tools, installed by scripts/test-deps.sh), served the way Kiwix serves its books — an
 * Apache-style listing of `<mirror>/<project>/`, the `.zim` file and its `.sha256` beside it.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { deflateSync } from 'node:zlib';

const run = promisify(execFile);

/**
 * Whether zimwriterfs is installed. In CI (CI=true) its absence fails the run; elsewhere the suite
 * skips with a loud message, as the other integration tests do.
 */
export async function zimwriterfsAvailable(): Promise<boolean> {
  try {
    await run('zimwriterfs', ['--version'], { timeout: 10_000 });
    return true;
  } catch {
    const message = 'this test needs zimwriterfs (zim-tools); run scripts/test-deps.sh';
    if (process.env.CI === 'true') throw new Error(`${message} (CI=true: failing instead of skipping)`);
    console.warn(`\n!!! SKIPPING: ${message}.\n`);
    return false;
  }
}

/** A real 48×48 PNG: zimwriterfs requires one as the illustration. */
function png48(): Buffer {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (data: Buffer) => {
    let c = 0xffffffff;
    for (const byte of data) c = table[(c ^ byte) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(48, 0);
  header.writeUInt32BE(48, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const rows = Buffer.alloc(48 * (1 + 48 * 3), 0x80);
  for (let y = 0; y < 48; y++) rows[y * (1 + 48 * 3)] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Makes a small wiki of `pages` pages (a welcome page linking the others) into a ZIM file. */
export async function makeZim(dir: string, options: { title: string; pages: number }): Promise<Buffer> {
  const html = join(dir, 'html');
  await mkdir(html, { recursive: true });
  await writeFile(join(html, 'favicon.png'), png48());
  const others = Array.from({ length: Math.max(0, options.pages - 1) }, (_, i) => i);
  await writeFile(
    join(html, 'index.html'),
    `<html><head><title>${options.title}</title></head><body>${others.map((i) => `<a href="page${i}.html">Page ${i}</a>`).join(' ')}</body></html>`,
  );
  for (const i of others) {
    await writeFile(join(html, `page${i}.html`), `<html><head><title>Page ${i}</title></head><body><p>Text of page ${i}</p></body></html>`);
  }
  const out = join(dir, 'out.zim');
  await run('zimwriterfs', [
    '--welcome=index.html',
    '--illustration=favicon.png',
    '--language=eng',
    `--title=${options.title}`,
    '--description=A small wiki for tests',
    '--creator=Test Creator',
    '--publisher=Test Publisher',
    '--withoutFTIndex',
    html,
    out,
  ]);
  return readFile(out);
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
