/**
 * extractTarball on hostile archives. Python's tarfile writes the entries node-tar would never
 * create for us (paths with `..`, absolute paths, links, devices), so each test crafts its own.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PermanentError } from '../../ports/errors.js';
import { extractTarball } from './safe-extract.js';

type Entry =
  | { name: string; type: 'file'; data?: string; size?: number; mode?: number }
  | { name: string; type: 'dir'; mode?: number }
  | { name: string; type: 'symlink' | 'hardlink'; target: string }
  | { name: string; type: 'fifo' | 'chardev' | 'blockdev' };

/** Writes the entries, in order, to a tarball; gzipped unless `plain`. */
const builder = String.raw`
import io, json, sys, tarfile
spec = json.loads(sys.argv[1])
out = spec['out']
with tarfile.open(out, 'w' if spec['plain'] else 'w:gz', format=tarfile.PAX_FORMAT) as archive:
    for e in spec['entries']:
        info = tarfile.TarInfo(e['name'])
        info.mtime = 1700000000
        body = None
        kind = e['type']
        if kind == 'file':
            body = (e.get('data') or '').encode() if 'size' not in e else b'x' * e['size']
            info.size = len(body)
            info.mode = e.get('mode', 0o644)
        elif kind == 'dir':
            info.type = tarfile.DIRTYPE
            info.mode = e.get('mode', 0o755)
        elif kind == 'symlink':
            info.type = tarfile.SYMTYPE
            info.linkname = e['target']
        elif kind == 'hardlink':
            info.type = tarfile.LNKTYPE
            info.linkname = e['target']
        elif kind == 'fifo':
            info.type = tarfile.FIFOTYPE
        elif kind == 'chardev':
            info.type = tarfile.CHRTYPE
            info.devmajor, info.devminor = 1, 3
        elif kind == 'blockdev':
            info.type = tarfile.BLKTYPE
            info.devmajor, info.devminor = 7, 0
        archive.addfile(info, io.BytesIO(body) if body is not None else None)
`;

let root: string;
let dest: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'task-mgmt-extract-'));
  dest = join(root, 'dest');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function craft(entries: Entry[], options: { plain?: boolean } = {}): string {
  const out = join(root, `archive-${randomUUID()}.tar${options.plain ? '' : '.gz'}`);
  execFileSync('python3', ['-c', builder, JSON.stringify({ out, entries, plain: options.plain ?? false })]);
  return out;
}

function extract(archive: string, limits?: { maxEntries: number; maxBytes: number }, into = dest) {
  return extractTarball(createReadStream(archive), into, limits ? { limits } : {});
}

/** Every path under `dir`, relative, folders marked with a trailing slash. */
async function tree(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (current: string) => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      found.push(relative(dir, path) + (entry.isDirectory() ? '/' : ''));
      if (entry.isDirectory()) await walk(path);
    }
  };
  await walk(dir);
  return found.sort();
}

/** The temp root holds only the archives and the target: anything else escaped. */
async function expectNothingOutsideTarget(): Promise<void> {
  const outside = (await readdir(root)).filter((name) => !name.startsWith('dest') && !name.startsWith('archive-'));
  expect(outside).toStrictEqual([]);
}

describe('extractTarball', () => {
  it('writes regular files and folders with the first path component stripped', async () => {
    const archive = craft([
      { name: 'octo-archive-abc123/', type: 'dir' },
      { name: 'octo-archive-abc123/README.md', type: 'file', data: '# hello\n' },
      { name: 'octo-archive-abc123/tasks/', type: 'dir' },
      { name: 'octo-archive-abc123/tasks/snapshot/Dockerfile', type: 'file', data: 'FROM busybox\n' },
      { name: 'octo-archive-abc123/empty/', type: 'dir' },
      { name: `octo-archive-abc123/${'long-folder-name/'.repeat(8)}deep.txt`, type: 'file', data: 'deep' },
    ]);
    const report = await extract(archive);

    expect(await readFile(join(dest, 'README.md'), 'utf8')).toBe('# hello\n');
    expect(await readFile(join(dest, 'tasks/snapshot/Dockerfile'), 'utf8')).toBe('FROM busybox\n');
    expect(await readFile(join(dest, 'long-folder-name/'.repeat(8), 'deep.txt'), 'utf8')).toBe('deep');
    expect((await stat(join(dest, 'empty'))).isDirectory()).toBe(true);
    expect(existsSync(join(dest, 'octo-archive-abc123'))).toBe(false);
    expect(report.skipped).toStrictEqual([]);
    expect(report.bytes).toBe('# hello\n'.length + 'FROM busybox\n'.length + 'deep'.length);
    await expectNothingOutsideTarget();
  });

  it('reads an uncompressed tarball too', async () => {
    const archive = craft([{ name: 'top/a.txt', type: 'file', data: 'a' }], { plain: true });
    await extract(archive);
    expect(await readFile(join(dest, 'a.txt'), 'utf8')).toBe('a');
  });

  it('skips paths that climb out with ..', async () => {
    const archive = craft([
      { name: 'top/ok.txt', type: 'file', data: 'ok' },
      { name: '../escape.txt', type: 'file', data: 'escaped' },
      { name: 'top/../../escape2.txt', type: 'file', data: 'escaped' },
      { name: 'top/sub/../../../escape3.txt', type: 'file', data: 'escaped' },
      { name: 'top/../sibling/', type: 'dir' },
    ]);
    const report = await extract(archive);

    expect(await tree(dest)).toStrictEqual(['ok.txt']);
    expect(report.skipped).toHaveLength(4);
    for (const name of ['../escape.txt', 'top/../../escape2.txt', 'top/sub/../../../escape3.txt']) {
      expect(report.skipped).toContain(`${name} (leaves the folder)`);
    }
    expect(existsSync(join(root, 'escape.txt'))).toBe(false);
    expect(existsSync(join(tmpdir(), 'escape2.txt'))).toBe(false);
    await expectNothingOutsideTarget();
  });

  it('skips absolute paths', async () => {
    const outsideFile = join(root, 'absolute-target.txt');
    const archive = craft([
      { name: 'top/ok.txt', type: 'file', data: 'ok' },
      { name: outsideFile, type: 'file', data: 'escaped' },
      { name: '/etc/task-mgmt-should-not-exist', type: 'file', data: 'escaped' },
    ]);
    const report = await extract(archive);

    expect(existsSync(outsideFile)).toBe(false);
    expect(existsSync('/etc/task-mgmt-should-not-exist')).toBe(false);
    expect(await tree(dest)).toStrictEqual(['ok.txt']);
    expect(report.skipped).toStrictEqual([`${outsideFile} (leaves the folder)`, '/etc/task-mgmt-should-not-exist (leaves the folder)']);
    await expectNothingOutsideTarget();
  });

  it('skips symlinks, and a file under a skipped symlink lands in a real folder inside', async () => {
    const outsideDir = join(root, 'outside');
    await mkdir(outsideDir);
    const archive = craft([
      { name: 'top/evil', type: 'symlink', target: outsideDir },
      { name: 'top/evil/pwned.txt', type: 'file', data: 'through the link' },
      { name: 'top/up', type: 'symlink', target: '../..' },
      { name: 'top/up/pwned2.txt', type: 'file', data: 'through the link' },
      { name: 'top/inside', type: 'symlink', target: 'README.md' },
      { name: 'top/README.md', type: 'file', data: 'readme' },
    ]);
    const report = await extract(archive);

    expect(await readdir(outsideDir)).toStrictEqual([]);
    expect(existsSync(join(root, 'pwned2.txt'))).toBe(false);
    expect(await tree(dest)).toStrictEqual(['README.md', 'evil/', 'evil/pwned.txt', 'up/', 'up/pwned2.txt']);
    expect((await lstat(join(dest, 'evil'))).isSymbolicLink()).toBe(false);
    expect(report.skipped).toStrictEqual(['top/evil (SymbolicLink)', 'top/up (SymbolicLink)', 'top/inside (SymbolicLink)']);
    await rm(outsideDir, { recursive: true });
    await expectNothingOutsideTarget();
  });

  it('skips hard links, inside or out', async () => {
    const archive = craft([
      { name: 'top/a.txt', type: 'file', data: 'a' },
      { name: 'top/same-as-a', type: 'hardlink', target: 'top/a.txt' },
      { name: 'top/passwd', type: 'hardlink', target: '/etc/passwd' },
      { name: 'top/up', type: 'hardlink', target: '../../outside' },
    ]);
    const report = await extract(archive);

    expect(await tree(dest)).toStrictEqual(['a.txt']);
    expect(report.skipped).toStrictEqual(['top/same-as-a (Link)', 'top/passwd (Link)', 'top/up (Link)']);
    await expectNothingOutsideTarget();
  });

  it('skips FIFOs and devices', async () => {
    const archive = craft([
      { name: 'top/pipe', type: 'fifo' },
      { name: 'top/null', type: 'chardev' },
      { name: 'top/loop', type: 'blockdev' },
      { name: 'top/a.txt', type: 'file', data: 'a' },
    ]);
    const report = await extract(archive);

    expect(await tree(dest)).toStrictEqual(['a.txt']);
    expect(report.skipped).toStrictEqual(['top/pipe (FIFO)', 'top/null (CharacterDevice)', 'top/loop (BlockDevice)']);
  });

  it('drops setuid, setgid, sticky and world-writable bits', async () => {
    const archive = craft([
      { name: 'top/suid', type: 'file', data: '#!/bin/sh\n', mode: 0o6777 },
      { name: 'top/shared/', type: 'dir', mode: 0o1777 },
      { name: 'top/script.sh', type: 'file', data: '#!/bin/sh\n', mode: 0o755 },
    ]);
    await extract(archive);

    expect((await stat(join(dest, 'suid'))).mode & 0o7777).toBe(0o755);
    expect((await stat(join(dest, 'shared'))).mode & 0o7777).toBe(0o755);
    expect((await stat(join(dest, 'script.sh'))).mode & 0o7777).toBe(0o755);
  });

  it('fails with a PermanentError past maxEntries', async () => {
    const archive = craft(Array.from({ length: 6 }, (_, i) => ({ name: `top/f${i}.txt`, type: 'file' as const, data: 'x' })));
    await expect(extract(archive, { maxEntries: 5, maxBytes: 1e6 })).rejects.toThrow(PermanentError);
    await expect(extract(archive, { maxEntries: 5, maxBytes: 1e6 }, join(root, 'dest-2'))).rejects.toThrow(/more than 5 entries/);
    await expect(extract(archive, { maxEntries: 6, maxBytes: 1e6 }, join(root, 'dest-3'))).resolves.toMatchObject({ files: 6 });
  });

  it('counts skipped entries against maxEntries', async () => {
    // Otherwise a million symlinks would pass the cap and fill `skipped`.
    const archive = craft(Array.from({ length: 10 }, (_, i) => ({ name: `top/l${i}`, type: 'symlink' as const, target: 'x' })));
    await expect(extract(archive, { maxEntries: 5, maxBytes: 1e6 })).rejects.toThrow(PermanentError);
  });

  it('fails with a PermanentError past maxBytes', async () => {
    const archive = craft([
      { name: 'top/a.bin', type: 'file', size: 600 },
      { name: 'top/b.bin', type: 'file', size: 600 },
    ]);
    const failure = await extract(archive, { maxEntries: 100, maxBytes: 1000 }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PermanentError);
    expect((failure as Error).message).toMatch(/larger than 1000 bytes/);
    expect(existsSync(join(dest, 'b.bin'))).toBe(false);
    await expect(extract(archive, { maxEntries: 100, maxBytes: 1200 }, join(root, 'dest-2'))).resolves.toMatchObject({ bytes: 1200 });
  });

  it('stops reading as soon as a limit is passed', async () => {
    // A source that never ends, like an endless download: waiting for its end would hang forever.
    const archive = await readFile(craft(Array.from({ length: 4 }, (_, i) => ({ name: `top/f${i}.bin`, type: 'file' as const, size: 700 })), { plain: true }));
    let last = archive.length - 1;
    while (last > 0 && archive[last] === 0) last -= 1;
    const members = archive.subarray(0, Math.ceil((last + 1) / 512) * 512);
    const endless = new Readable({ read() {} });
    endless.push(members);

    const started = Date.now();
    await expect(extractTarball(endless, dest, { limits: { maxEntries: 100, maxBytes: 1000 } })).rejects.toThrow(PermanentError);
    expect(Date.now() - started).toBeLessThan(5000);
  }, 10_000);

  it('stops when its signal is aborted', async () => {
    const endless = new Readable({ read() {} });
    const controller = new AbortController();
    const extraction = extractTarball(endless, dest, { signal: controller.signal });
    controller.abort(new Error('cancelled'));
    await expect(extraction).rejects.toThrow();
  });
});
