/**
 * A backend that is not there stops `serve` and `worker` at start-up within CONNECT_TIMEOUT, with
 * one line that names it (and hides its password), instead of a process that waits for ever.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitHub } from '../fake-github/index.js';
import { freePort, projectRoot } from '../support/app-process.js';

const connectTimeoutMs = 2000;
/** Node's start and the compiled app's load, on a busy machine. */
const marginMs = 8000;

let gh: FakeGitHub;
let dataDir: string;

beforeAll(async () => {
  gh = await FakeGitHub.start();
  dataDir = await mkdtemp(join(tmpdir(), 'task-mgmt-fail-fast-'));
});

afterAll(async () => {
  await gh?.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function start(command: 'serve' | 'worker', env: Record<string, string>): Promise<{ code: number | null; ms: number; stdout: string; stderr: string }> {
  const started = Date.now();
  const child = spawn(process.execPath, [join(projectRoot, 'bin', 'task-mgmt.js'), command], {
    cwd: projectRoot,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...gh.appEnv(),
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      CONNECT_TIMEOUT: `${connectTimeoutMs}ms`,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), connectTimeoutMs + marginMs + 5000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(killer);
  return { code, ms: Date.now() - started, stdout, stderr };
}

describe('a backend that cannot be reached at start-up', () => {
  it('stops `task-mgmt worker` with one line naming RabbitMQ and its URL, password hidden', async () => {
    const closed = await freePort();
    const result = await start('worker', { QUEUE_URL: `amqp://guest:hunter2secret@127.0.0.1:${closed}/`, LOG_LEVEL: 'warn' });
    expect(result.code).toBe(1);
    expect(result.ms).toBeLessThan(connectTimeoutMs + marginMs);
    expect(result.ms).toBeGreaterThanOrEqual(connectTimeoutMs);
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^task-mgmt worker: cannot reach RabbitMQ at amqp://guest:\\*\\*\\*@127\\.0\\.0\\.1:${closed}/ \\(QUEUE_URL\\) within 2 s: .*ECONNREFUSED`)),
    ]);
    expect(result.stdout + result.stderr).not.toContain('hunter2secret');
  });

  it('stops `task-mgmt worker` with one line naming Redis', async () => {
    const closed = await freePort();
    const result = await start('worker', { QUEUE_URL: `redis://:hunter2secret@127.0.0.1:${closed}`, LOG_LEVEL: 'warn' });
    expect(result.code).toBe(1);
    expect(result.ms).toBeLessThan(connectTimeoutMs + marginMs);
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^task-mgmt worker: cannot reach Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${closed} \\(QUEUE_URL\\) within 2 s: .*ECONNREFUSED`)),
    ]);
    expect(result.stdout + result.stderr).not.toContain('hunter2secret');
  });

  it('stops `task-mgmt serve` with one line naming PostgreSQL, and one naming Kubo', async () => {
    const closed = await freePort();
    const postgres = await start('serve', { DATABASE_URL: `postgres://postgres:hunter2secret@127.0.0.1:${closed}/test`, LOG_LEVEL: 'warn' });
    expect(postgres.code).toBe(1);
    expect(postgres.ms).toBeLessThan(connectTimeoutMs + marginMs);
    expect(postgres.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^task-mgmt serve: cannot reach PostgreSQL at postgres://postgres:\\*\\*\\*@127\\.0\\.0\\.1:${closed}/test \\(DATABASE_URL\\) within 2 s: .*ECONNREFUSED`)),
    ]);
    expect(postgres.stdout + postgres.stderr).not.toContain('hunter2secret');

    const kubo = await start('serve', { IPFS_API_URL: `http://127.0.0.1:${closed}`, LOG_LEVEL: 'warn' });
    expect(kubo.code).toBe(1);
    expect(kubo.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^task-mgmt serve: cannot reach Kubo at http://127\\.0\\.0\\.1:${closed} \\(IPFS_API_URL\\) within 2 s: .*ECONNREFUSED`))]);
  });
});
