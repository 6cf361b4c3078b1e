/**
 * Servers of a test's own, so that stopping or restarting them disturbs no other suite: a
 * `redis-server` on a free port with AOF persistence (as BullMQ's production guide asks), and a
 * RabbitMQ vhost on the shared broker that `rabbitmqctl` can restart or take away.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './app-process.js';

const run = promisify(execFile);

export interface OwnRedis {
  url: string;
  port: number;
  /** Stops the server (SHUTDOWN, which writes the AOF) and waits until it has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data folder, and waits until it answers. */
  start(): Promise<void>;
  /** Stops it for good and removes its data folder. */
  close(): Promise<void>;
}

export async function startOwnRedis(): Promise<OwnRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-redis-'));
  let child: ChildProcess | null = null;
  const url = `redis://127.0.0.1:${port}`;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--dir', dir], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.ping();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      } finally {
        client.disconnect();
      }
    }
  };
  const stop = async () => {
    const current = child;
    if (!current || current.exitCode !== null) return;
    const exited = new Promise((resolve) => current.once('exit', resolve));
    current.kill('SIGTERM'); // redis-server saves (the AOF is fsynced on every write anyway) and exits
    await exited;
  };
  await start();
  return {
    url,
    port,
    stop,
    start,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface OwnVhost {
  /** amqp://guest:guest@127.0.0.1:5672/<vhost> */
  url: string;
  name: string;
  /** `rabbitmqctl restart_vhost`: every connection to it is closed, its queues restarted. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 60_000 });
  return stdout;
}

export async function createOwnVhost(): Promise<OwnVhost> {
  const name = `task-mgmt-test-${randomBytes(4).toString('hex')}`;
  await rabbitmqctl('add_vhost', name);
  await rabbitmqctl('set_permissions', '-p', name, 'guest', '.*', '.*', '.*');
  return {
    url: `amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(name)}`,
    name,
    restart: async () => {
      // restart_vhost alone restarts only a vhost whose processes failed; stopping them first, as a
      // crash would, makes it restart its queues, and every client connection to it is closed.
      await rabbitmqctl('eval', `rabbit_vhost_sup_sup:stop_and_delete_vhost(<<"${name}">>).`).catch(() => '');
      await rabbitmqctl('close_all_connections', '--vhost', name, 'task-mgmt test: vhost restart');
      await rabbitmqctl('restart_vhost', '--vhost', name);
    },
    close: async () => void (await rabbitmqctl('delete_vhost', name).catch(() => '')),
  };
}

const tools = new Map<string, Promise<boolean>>();

/**
 * Whether this machine can start a redis-server of the test's own, or drive the broker with
 * rabbitmqctl (not so where Redis and RabbitMQ run as service containers). Says so loudly when not:
 * the tests that need it are skipped, as the broker-restart tests of the RabbitMQ contract are.
 */
export function canRunOwn(tool: 'redis-server' | 'rabbitmqctl'): Promise<boolean> {
  let known = tools.get(tool);
  if (!known) {
    known = run(tool, tool === 'redis-server' ? ['--version'] : ['status'], { timeout: 30_000 }).then(
      () => true,
      () => {
        console.warn(`\n!!! SKIPPING: ${tool} cannot be run on this machine, so the tests that restart a server of their own do not run.\n`);
        return false;
      },
    );
    tools.set(tool, known);
  }
  return known;
}
