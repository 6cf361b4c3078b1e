/**
 * Starts the real app (`bin/task-mgmt.js serve`, the compiled code `npm start` runs) as a child
 * process against the fake GitHub, and collects its log so tests can check what it printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FakeGitHub } from '../fake-github/index.js';

export const projectRoot = resolve(import.meta.dirname, '..', '..');

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface AppProcess {
  url: string;
  /** A worker's `/metrics` and `/healthz` (on a free METRICS_PORT of its own unless the test set one). */
  metricsUrl: string;
  webhookUrl: string;
  dataDir: string;
  /** The child's process id (to read its memory from /proc). */
  pid: number;
  output(): string;
  stop(): Promise<void>;
  /** Sends a signal straight away (SIGKILL: the process dies without cleaning up). */
  kill(signal: NodeJS.Signals): void;
  /** Settles when the process has exited, with its exit code or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startApp(
  gh: FakeGitHub,
  env: Record<string, string> = {},
  command: string[] = ['serve'],
): Promise<AppProcess> {
  const port = await freePort();
  // Workers serve metrics on METRICS_PORT (9464 by default), which tests running side by side would share.
  const metricsPort = command[0] === 'worker' ? (env.METRICS_PORT ?? String(await freePort())) : '0';
  const dataDir = env.DATA_DIR ?? (await mkdtemp(join(tmpdir(), 'task-mgmt-app-')));
  const child: ChildProcess = spawn(process.execPath, [join(projectRoot, 'bin', 'task-mgmt.js'), ...command], {
    cwd: projectRoot,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}),
      ...gh.appEnv(),
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      IPFS_GATEWAY_URL: 'https://gateway.example',
      TASK_TIMEOUT: '2m',
      ...(command[0] === 'worker' ? { METRICS_PORT: metricsPort } : {}),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal })));
  const exited = exit.then(({ code }) => code);
  const url = `http://127.0.0.1:${port}`;
  const webhookUrl = `${url}/api/github/webhooks`;
  if (command[0] !== 'worker') gh.setWebhookTarget(webhookUrl);

  const deadline = Date.now() + 20_000;
  const ready = command[0] === 'worker' ? 'worker is taking runs' : 'task-mgmt is ready';
  try {
    for (;;) {
      if (command[0] === 'worker') break;
      if (child.exitCode !== null) throw new Error(`the app exited with ${child.exitCode} before it was ready:\n${output}`);
      try {
        const response = await fetch(`${url}/healthz`);
        if (response.ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`the app did not answer /healthz within 20 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Ready means the worker is consuming too: the log line comes after the queue starts.
    while (!output.includes(ready)) {
      if (child.exitCode !== null) throw new Error(`the process exited with ${child.exitCode} before it was ready:\n${output}`);
      if (Date.now() > deadline) throw new Error(`the process did not log "${ready}" within 20 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (error) {
    // Leave nothing behind: the process, and the data folder made here.
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    if (!env.DATA_DIR) await rm(dataDir, { recursive: true, force: true });
    throw error;
  }

  return {
    url,
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
    webhookUrl,
    dataDir,
    pid: child.pid!,
    output: () => output,
    kill: (signal) => {
      child.kill(signal);
    },
    exited: exit,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      if (!env.DATA_DIR) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
