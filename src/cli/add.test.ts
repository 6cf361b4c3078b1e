import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmbeddedIpfsStore } from '../adapters/ipfs/embedded-ipfs-store.js';
import { addCommand } from './add.js';
import type { AddStoreRequest } from './add.js';

let dir: string;

async function file(name: string, content: string): Promise<void> {
  const path = join(dir, name);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
}

async function run(...argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const requests: AddStoreRequest[] = [];
  const code = await addCommand(
    argv,
    { stdout: (text) => stdout.push(text), stderr: (text) => stderr.push(text) },
    {
      createStore: (request) => {
        requests.push(request);
        return new EmbeddedIpfsStore({ dataDir: join(dir, 'data'), profile: request.import, includeHidden: request.includeHidden });
      },
    },
  );
  return { code, stdout: stdout.join(''), stderr: stderr.join(''), requests };
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'add-command-'));
  await file('planets/mars.txt', 'Hello Mars!\n');
  await file('planets/venus.txt', 'Hello Venus!\n');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('task-mgmt add', () => {
  // Kubo sharness t0040 add_directory, run with each of its flag sets.
  it.each([
    [[], 'QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY'],
    [['--raw-leaves'], 'QmfWfQfKCY5Ukv9peBbxM5vqWM9BzmqUSXvdCgjT2wsiBT'],
    [['--raw-leaves=true'], 'QmfWfQfKCY5Ukv9peBbxM5vqWM9BzmqUSXvdCgjT2wsiBT'],
    [['--cid-version=1'], 'bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi'],
    [['--cid-version', '1'], 'bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi'],
    [['--cid-version=1', '--raw-leaves=false'], 'bafybeif5tuep5ap2d7zyhbktucey75aoacxufgt6i3v4gebmixyipnyp7y'],
    [['--profile=unixfs-v0-2015'], 'QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY'],
    [['--profile=legacy-cid-v0'], 'QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY'],
  ])('add -r -Q %j planets prints only the root CID', async (flags, expected) => {
    const result = await run('-r', '-Q', ...flags, join(dir, 'planets'));
    expect(result).toMatchObject({ code: 0, stdout: `${expected}\n`, stderr: '' });
  });

  it('accepts combined short flags', async () => {
    expect((await run('-rQ', join(dir, 'planets'))).stdout).toBe('QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY\n');
  });

  it('prints "added <cid> <name>" for each top-level entry and the root, like ipfs add -r', async () => {
    const result = await run('-r', join(dir, 'planets'));
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      [
        'added QmPrrHqJzto9m7SyiRzarwkqPcCSsKR2EB1AyqJfe8L8tN planets/mars.txt',
        'added QmU5kp3BH3B8tnWUU2Pikdb2maksBNkb92FHRr56hyghh4 planets/venus.txt',
        'added QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY planets',
        '',
      ].join('\n'),
    );
  });

  it('lists files before folders, as Kubo finishes folders last (t0040 moons)', async () => {
    await file('moons/jupiter/europa.txt', 'Hello Europa!\n');
    await file('moons/saturn/titan.txt', 'Hello Titan!\n');
    await file('moons/mercury.txt', 'hey you are no moon!\n');
    const result = await run('-r', join(dir, 'moons'));
    expect(result.stdout).toBe(
      [
        'added QmRsTB5CpEUvDUpDgHCzb3VftZ139zrk9zs5ZcgYh9TMPJ moons/mercury.txt',
        'added QmS5mZddhFPLWFX3w6FzAy9QxyYkaxvUpsWCtZ3r7jub9J moons/jupiter',
        'added QmaMagZT4rTE7Nonw8KGSK4oe1bh533yhZrCo1HihSG8FK moons/saturn',
        'added QmbGoaQZm8kjYfCiN1aBsgwhqfUBGDYTrDb91Mz7Dvq81B moons',
        '',
      ].join('\n'),
    );
  });

  it('-q prints the CIDs alone', async () => {
    const result = await run('-r', '-q', join(dir, 'planets'));
    expect(result.stdout.trim().split('\n')).toEqual([
      'QmPrrHqJzto9m7SyiRzarwkqPcCSsKR2EB1AyqJfe8L8tN',
      'QmU5kp3BH3B8tnWUU2Pikdb2maksBNkb92FHRr56hyghh4',
      'QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY',
    ]);
  });

  it('adds a single file without -r', async () => {
    await file('hello.txt', 'Hello Worlds!\n');
    const result = await run(join(dir, 'hello.txt'));
    expect(result).toMatchObject({ code: 0, stdout: 'added QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH hello.txt\n' });
  });

  it('--profile=unixfs-v1-2025 (Kubo cid_profiles_test.go "hello world")', async () => {
    await file('hello', 'hello world');
    const result = await run('-Q', '--profile=unixfs-v1-2025', join(dir, 'hello'));
    expect(result.stdout).toBe('bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e\n');
  });

  it('passes --hidden and the import flags to the store it creates', async () => {
    await file('planets/.hidden', 'x');
    const result = await run('-r', '-Q', '-H', '--cid-version=1', '--raw-leaves=false', join(dir, 'planets'));
    expect(result.requests).toEqual([{ import: { cidVersion: 1, rawLeaves: false }, includeHidden: true }]);
    expect(result.stdout).not.toBe('bafybeif5tuep5ap2d7zyhbktucey75aoacxufgt6i3v4gebmixyipnyp7y\n');
  });

  it('refuses a folder without -r, in Kubo words', async () => {
    const result = await run(join(dir, 'planets'));
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`Error: ${join(dir, 'planets')} is a directory, use the '-r' flag to specify directories\n`);
    expect(result.requests).toEqual([]);
  });

  it.each([
    [['--cid-version=9', 'x'], '--cid-version must be 0 or 1, got "9"'],
    [['--profile=unixfs-v2-2030', 'x'], '--profile must be one of unixfs-v0-2015, unixfs-v1-2025, got "unixfs-v2-2030"'],
    [['--raw-leaves=maybe', 'x'], '--raw-leaves takes true or false, got "maybe"'],
    [['--chunker=size-1024', 'x'], "Unknown option '--chunker'"],
    [['--profile'], "'--profile"],
    [['-r'], 'a path to add is required'],
    [['a', 'b'], 'add takes one path, got 2: a b'],
  ])('refuses %j with exit code 2 and says why', async (argv, message) => {
    const result = await run(...argv);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain('Usage: task-mgmt add');
    expect(result.requests).toEqual([]);
  });

  it('reports a missing path with exit code 1', async () => {
    const result = await run('-r', join(dir, 'nope'));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(join(dir, 'nope'));
  });

  it('prints help', async () => {
    const result = await run('--help');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('--cid-version');
  });
});
