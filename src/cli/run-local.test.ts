import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { SqliteRunStore } from '../adapters/store/sqlite-run-store.js';
import type { Run } from '../core/runs/run.js';
import { readManifestYamlOffThread } from '../core/manifest/manifest-yaml-pool.js';
import { parseFolderRequest } from './local-request.js';
import { localDataDir, resultLines, runLocal } from './run-local.js';
import { validate } from './validate.js';

let dir: string;

beforeAll(async () => {
  // Under the TypeScript sources the YAML reader's threads load through tsx, which on a busy
  // machine can take longer than the 2 s a manifest read may: start them before the tests time it.
  await readManifestYamlOffThread('version: 1\n', 60_000);
}, 90_000);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'run-local-'));
  await mkdir(join(dir, 'repo'));
  await writeFile(join(dir, 'a-file.txt'), 'not a folder\n');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('[dir] [task] [key=value…]', () => {
  it.each([
    [[], { named: false, task: null, params: {} }],
    [['repo'], { named: true, task: null, params: {} }],
    [['repo', 'fetch', 'lang=en'], { named: true, task: 'fetch', params: { lang: 'en' } }],
    [['fetch'], { named: false, bareWord: 'fetch', task: 'fetch' }],
    [['lang=en'], { named: false, task: null, params: { lang: 'en' } }],
  ])('%j', (argv, expected) => {
    expect(parseFolderRequest(argv, dir)).toMatchObject(expected);
  });

  it.each([
    [['a-file.txt'], 'a-file.txt is a file, not a folder: name the folder that holds task-mgmt.yml, a Dockerfile or a Procfile'],
    [['./missing'], 'there is no folder ./missing'],
    [['missing/repo'], 'there is no folder missing/repo'],
    [['repo', 'hello', 'colour'], expect.stringContaining('is not `key=value`')],
  ])('%j is refused in one line', (argv, error) => {
    expect(parseFolderRequest(argv, dir)).toEqual({ error });
  });
});

describe('task-mgmt run and validate, refusing', () => {
  function io() {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { out: (line: string) => out.push(line), err: (line: string) => err.push(line) } };
  }
  const config = () => loadConfig({ DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'silent' }, { takesWebhooks: false });

  it('a file, or a folder that is not there, with one line and exit code 2, before anything is recorded', async () => {
    for (const argv of [[join(dir, 'a-file.txt')], [join(dir, 'missing')]]) {
      const run = io();
      expect(await runLocal(config(), argv, run.io)).toBe(2);
      expect(run.err).toHaveLength(1);
      expect(run.err[0]).toMatch(/^task-mgmt run: (.*is a file, not a folder|there is no folder .*missing)/);
      const checked = io();
      expect(await validate(config(), argv, checked.io.out, checked.io.err)).toBe(2);
      expect(checked.err[0]).toMatch(/^task-mgmt validate: /);
    }
  });

  it('a folder with no task says so, naming the folder rather than a commit', async () => {
    const run = io();
    expect(await runLocal(config(), [join(dir, 'repo')], run.io)).toBe(1);
    expect(run.err).toEqual([`task-mgmt run: ${join(dir, 'repo')} declares no task: add a \`task-mgmt.yml\` or a \`Dockerfile\` at the root of the repository.`]);
  });

  it('validate says what run would refuse (network: true), and run refuses it the same way', async () => {
    await writeFile(join(dir, 'repo', 'Dockerfile'), 'FROM busybox\nCMD true\n');
    await writeFile(join(dir, 'repo', 'task-mgmt.yml'), 'version: 1\ntasks:\n  web:\n    dockerfile: Dockerfile\n    network: true\n');
    const checked = io();
    expect(await validate(config(), [join(dir, 'repo')], checked.io.out, checked.io.err)).toBe(1);
    const refusal = 'the task `web` asks for `network: true`, and containers get no network on this deployment.';
    expect(checked.out.at(-1)).toBe(`\ntask-mgmt run and /run would refuse it: ${refusal}`);
    const run = io();
    expect(await runLocal(config(), [join(dir, 'repo')], run.io)).toBe(1);
    expect(run.err).toEqual([`task-mgmt run: ${refusal}`]);
  });

  it('validate takes the task and parameters run would, and refuses what run would refuse', async () => {
    await writeFile(join(dir, 'repo', 'Dockerfile'), 'FROM busybox\nCMD true\n');
    await writeFile(join(dir, 'repo', 'task-mgmt.yml'), 'version: 1\ntasks:\n  hello:\n    dockerfile: Dockerfile\n    params:\n      lang: { pattern: "^[a-z]{2}$" }\n');
    const bad = io();
    expect(await validate(config(), [join(dir, 'repo'), 'hello', 'lang=english'], bad.io.out, bad.io.err)).toBe(1);
    expect(bad.out.at(-1)).toMatch(/^\ntask-mgmt run and \/run would refuse `hello`: .*lang/);
    const good = io();
    expect(await validate(config(), [join(dir, 'repo'), 'hello', 'lang=en'], good.io.out, good.io.err)).toBe(0);
    expect(good.out.join('\n')).not.toContain('would refuse');
  });
});

describe('task-mgmt run, when the network fails', () => {
  let server: Server;
  let url: string;

  beforeEach(async () => {
    // Answers every request by hanging up: a network that fails mid-request.
    server = createServer((req) => req.socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/wikipedia.zim`;
  });

  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('ends the task failed and the tasks that need it cancelled, none left queued, in its own data folder', async () => {
    await writeFile(join(dir, 'repo', 'task-mgmt.yml'), `version: 1\ntasks:\n  fetch:\n    uses: ipfs/add-url\n    with: { url: "${url}" }\n  identify:\n    needs: [fetch]\n    uses: files/identify\n    with: { input: fetch }\n`);
    const config = loadConfig({ DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'silent', ALLOW_PRIVATE_ADDRESSES: 'true' }, { takesWebhooks: false });
    // A log of a run older than RETENTION goes; a recent one stays.
    const logs = join(localDataDir(config), 'logs');
    await mkdir(logs, { recursive: true });
    const ancient = new Date(Date.now() - config.RETENTION - 24 * 3600_000);
    await writeFile(join(logs, 'fetch-ancient.log'), 'old\n');
    await utimes(join(logs, 'fetch-ancient.log'), ancient, ancient);
    await writeFile(join(logs, 'fetch-recent.log'), 'recent\n');
    const out: string[] = [];
    const err: string[] = [];
    const code = await runLocal(config, [join(dir, 'repo')], { out: (line) => out.push(line), err: (line) => err.push(line) });
    expect(code).toBe(1);
    expect(existsSync(join(logs, 'fetch-ancient.log'))).toBe(false);
    expect(existsSync(join(logs, 'fetch-recent.log'))).toBe(true);
    expect(err).toEqual([]);
    expect(out).toContainEqual(expect.stringMatching(/^fetch: failed — .*\(a local run is not tried again\)$/));
    expect(out).toContainEqual(expect.stringMatching(/^identify: cancelled — the task `fetch` it needs ended failed/));
    expect(out.join('\n')).not.toContain('ipfs://');
    // Where each task's log is, said before it starts, and the file is there to read.
    for (const task of ['fetch', 'identify']) {
      const where = out.find((line) => line.startsWith(`${task}: log in `));
      expect(where, out.join('\n')).toMatch(new RegExp(`^${task}: log in ${join(localDataDir(config), 'logs')}/${task}-.+\\.log$`));
      expect(existsSync(where!.slice(`${task}: log in `.length))).toBe(true);
    }

    const store = SqliteRunStore.openReadOnly(join(localDataDir(config), 'task-mgmt.sqlite'));
    try {
      expect((await store.listRuns({ limit: 10 })).map((run) => [run.task, run.state]).sort()).toEqual([
        ['fetch', 'failed'],
        ['identify', 'cancelled'],
      ]);
    } finally {
      await store.close();
    }
  });
});

describe('what a finished task prints', () => {
  const run = (fields: Partial<Run>): Run => ({ task: 'build', state: 'succeeded', error: null, outputCid: null, outputFiles: [], provenanceCid: null, ...fields }) as Run;
  const file = { name: 'hello.txt', cid: 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o', kind: 'file', size: 12 } as Run['outputFiles'][number];
  const emptyFolder = 'QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn';

  it.each([
    [{ outputCid: 'QmRoot', outputFiles: [file] }, ['build: succeeded ipfs://QmRoot', `  ${file.cid}  hello.txt`]],
    [{ state: 'failed', error: 'the task failed', outputCid: emptyFolder }, ['build: failed — the task failed']],
    [{ state: 'timed_out', error: 'too long', outputCid: emptyFolder }, ['build: timed out — too long']],
    [{ state: 'failed', error: 'exit code 1', outputCid: 'QmPartial', outputFiles: [file] }, ['build: failed — exit code 1 (it left ipfs://QmPartial)', `  ${file.cid}  hello.txt`]],
    [
      { outputCid: 'QmRoot', outputFiles: [file], provenanceCid: 'bafyrecord' },
      ['build: succeeded ipfs://QmRoot', `  ${file.cid}  hello.txt`, '  provenance: ipfs://bafyrecord  (task-mgmt verify bafyrecord)'],
    ],
    [
      { state: 'failed', error: 'exit code 1', outputCid: emptyFolder, provenanceCid: 'bafyrecord' },
      ['build: failed — exit code 1', '  provenance: ipfs://bafyrecord  (task-mgmt verify bafyrecord)'],
    ],
    [{ state: 'cancelled', error: 'the task `fetch` it needs ended failed', provenanceCid: null }, ['build: cancelled — the task `fetch` it needs ended failed']],
  ] as Array<[Partial<Run>, string[]]>)('%j', (fields, lines) => {
    expect(resultLines(run(fields))).toEqual(lines);
  });
});
