import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NotRegularFileError, readSmallFile, SMALL_FILE_MAX_BYTES } from './untrusted-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'untrusted-file-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readSmallFile', () => {
  it('reads a regular file whole', async () => {
    await writeFile(join(dir, 'a.json'), '{"done":1}');
    expect(await readSmallFile(join(dir, 'a.json'))).toEqual({ bytes: Buffer.from('{"done":1}'), complete: true });
  });

  it('reads at most 64 KiB of a longer file and says it is incomplete', async () => {
    await writeFile(join(dir, 'big'), Buffer.alloc(SMALL_FILE_MAX_BYTES + 1, 'x'));
    await writeFile(join(dir, 'exact'), Buffer.alloc(SMALL_FILE_MAX_BYTES, 'x'));
    const big = await readSmallFile(join(dir, 'big'));
    expect([big.bytes.length, big.complete]).toEqual([SMALL_FILE_MAX_BYTES, false]);
    const exact = await readSmallFile(join(dir, 'exact'));
    expect([exact.bytes.length, exact.complete]).toEqual([SMALL_FILE_MAX_BYTES, true]);
  });

  const refused: [string, (path: string) => Promise<unknown>, string][] = [
    ['a FIFO nobody writes to', async (path) => execFileSync('mkfifo', [path]), 'FIFO (named pipe)'],
    ['a symlink to a file outside', async (path) => {
      await writeFile(join(dir, 'secret'), 'secret');
      await symlink(join(dir, 'secret'), path);
    }, 'symbolic link'],
    ['a symlink to an endless device', (path) => symlink('/dev/zero', path), 'symbolic link'],
    ['a folder', (path) => import('node:fs/promises').then((fs) => fs.mkdir(path)), 'folder'],
  ];

  it.each(refused)('does not open %s, and says what it is', async (_, make, type) => {
    const path = join(dir, 'progress.json');
    await make(path);
    const attempt = readSmallFile(path);
    await expect(attempt).rejects.toBeInstanceOf(NotRegularFileError);
    await expect(attempt).rejects.toThrow(`${path} is a ${type}, not a regular file, so it was not opened`);
  });

  it('rejects a missing file with ENOENT', async () => {
    await expect(readSmallFile(join(dir, 'none'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
