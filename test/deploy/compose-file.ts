/**
 * Static checks of deploy/compose.yaml, without starting anything:
 *
 * 1. Compose's own validation: `docker compose config` (the Compose plugin) or Debian's
 *    `docker-compose config` resolves the file as `up` would, with the example env files, for
 *    the default services and for the `rabbitmq` profile.
 * 2. The project's rules on the resolved file: every service but task-mgmt's own (whose image
 *    has a HEALTHCHECK, checked in dockerfile.test.ts) and the one-shot folder set-up has a
 *    health check; only workers get the Docker socket; and, on the file as written, no secret
 *    is set in it (secrets come from env files and secrets/).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { parse } from 'yaml';

const run = promisify(execFile);

export const deployDir = new URL('../../deploy/', import.meta.url).pathname;

/** Variables a user sets in the shell; the env files are the committed examples. */
export function exampleEnvironment(dir = deployDir): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DOCKER_GID: '999',
    TASK_MGMT_ENV_FILE: join(dir, 'task-mgmt.env.example'),
    POSTGRES_ENV_FILE: join(dir, 'postgres.env.example'),
    RABBITMQ_ENV_FILE: join(dir, 'rabbitmq.env.example'),
    // Any file that exists: Compose may check that a secret's file is there, never reads it here.
    PRIVATE_KEY_FILE: join(dir, 'task-mgmt.env.example'),
  };
}

/** `docker compose` when the plugin is there, else Debian's docker-compose; undefined if neither. */
export async function composeCommand(): Promise<string[] | undefined> {
  for (const command of [['docker', 'compose'], ['docker-compose']]) {
    try {
      await run(command[0]!, [...command.slice(1), 'version'], { timeout: 30_000 });
      return command;
    } catch {
      // Not installed, or not this one.
    }
  }
  return undefined;
}

/** The file as Compose resolves it, or Compose's own complaint. */
export async function composeConfig(
  command: string[],
  file: string,
  profiles: string[] = [],
  env = exampleEnvironment(),
): Promise<{ config?: Record<string, any>; error?: string }> {
  const args = [...command.slice(1), '-f', file, ...profiles.flatMap((p) => ['--profile', p]), 'config'];
  try {
    const { stdout } = await run(command[0]!, args, { env, timeout: 60_000 });
    return { config: parse(stdout) as Record<string, any> };
  } catch (error) {
    const { stderr, message } = error as { stderr?: string; message: string };
    return { error: (stderr || message).trim().split('\n').slice(-3).join(' ') };
  }
}

/** Variable names whose values are secrets: they belong in env files or secrets/. */
const secretName = /SECRET|PASSWORD|PASS$|TOKEN|^PRIVATE_KEY$|DATABASE_URL|QUEUE_URL|EVENTS_URL|SMTP_URL/;

/** The rules above, on the resolved configuration and on the file as written. */
export function composeProblems(resolved: Record<string, any>, written: Record<string, any>): string[] {
  const problems: string[] = [];
  for (const [name, service] of Object.entries<Record<string, any>>(resolved.services ?? {})) {
    const ownImage = String(service.image ?? '').startsWith('task-mgmt');
    const command = ([] as string[]).concat(service.command ?? []);
    const oneShot = service.restart === 'no';
    if (!ownImage && !oneShot && (!service.healthcheck || service.healthcheck.disable)) problems.push(`${name} has no healthcheck`);
    const socket = ((service.volumes ?? []) as (string | { source?: string })[]).some((volume) =>
      (typeof volume === 'string' ? volume : (volume.source ?? '')).includes('docker.sock'),
    );
    if (socket && !(ownImage && command[0] === 'worker')) problems.push(`${name} mounts the Docker socket, which only workers may`);
    if (ownImage && command[0] === 'worker' && !socket) problems.push(`${name} is a worker without the Docker socket`);
  }
  const writtenServices = { ...(written.services ?? {}), ...Object.fromEntries(Object.entries(written).filter(([key]) => key.startsWith('x-'))) };
  for (const [name, service] of Object.entries<Record<string, any>>(writtenServices)) {
    const environment = service?.environment ?? {};
    const names = Array.isArray(environment) ? environment.map((entry: string) => entry.split('=')[0]!) : Object.keys(environment);
    for (const variable of names.filter((n: string) => secretName.test(n))) {
      problems.push(`${name} sets ${variable} in the compose file; secrets belong in an env file or secrets/`);
    }
  }
  return problems;
}
