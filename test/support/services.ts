/**
 * Integration tests need real services. In CI (CI=true) a missing service fails the run;
 * on a laptop the suite is skipped with a loud message naming the service.
 */
import { connect } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type ServiceName = 'redis' | 'postgres' | 'rabbitmq' | 'docker';

const ports: Record<Exclude<ServiceName, 'docker'>, number> = { redis: 6379, postgres: 5432, rabbitmq: 5672 };

function tcpAnswers(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function dockerAnswers(): Promise<boolean> {
  try {
    await run('docker', ['version', '--format', '{{.Server.Version}}'], { timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

const cache = new Map<ServiceName, Promise<boolean>>();

export function serviceAvailable(name: ServiceName): Promise<boolean> {
  let known = cache.get(name);
  if (!known) {
    known = name === 'docker' ? dockerAnswers() : tcpAnswers(ports[name]);
    cache.set(name, known);
  }
  return known;
}

/**
 * Resolves to true when every named service answers. Throws in CI when one is missing,
 * so a broken environment can never pass as a green run; elsewhere warns and returns false.
 */
export async function requireServices(...names: ServiceName[]): Promise<boolean> {
  const missing: ServiceName[] = [];
  for (const name of names) if (!(await serviceAvailable(name))) missing.push(name);
  if (missing.length === 0) return true;
  const message = `integration test needs ${missing.join(', ')}, which did not answer on this machine`;
  if (process.env.CI === 'true') throw new Error(`${message} (CI=true: failing instead of skipping)`);
  console.warn(`\n!!! SKIPPING: ${message}. Run scripts/services-up.sh to start them.\n`);
  return false;
}
