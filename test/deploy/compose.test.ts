/**
 * deploy/compose.yaml resolves with Compose itself (the default services and the rabbitmq
 * profile) and keeps the project's rules; broken copies are refused, so neither check passes by
 * checking nothing. Needs `docker compose` or Debian's docker-compose (scripts/test-deps.sh).
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { composeCommand, composeConfig, composeProblems, deployDir, exampleEnvironment } from './compose-file.js';

const file = join(deployDir, 'compose.yaml');
const text = readFileSync(file, 'utf8');

let command: string[];
let scratch: string;

beforeAll(async () => {
  const found = await composeCommand();
  if (!found) throw new Error('neither `docker compose` nor docker-compose is installed: run scripts/test-deps.sh');
  command = found;
  scratch = mkdtempSync(join(tmpdir(), 'task-mgmt-compose-'));
  for (const example of ['task-mgmt.env.example', 'postgres.env.example', 'rabbitmq.env.example']) {
    copyFileSync(join(deployDir, example), join(scratch, example));
  }
});
afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** compose.yaml changed by `edit`, written beside copies of the example env files. */
async function configOf(edit: (text: string) => string, profiles: string[] = []) {
  const changed = join(scratch, 'compose.yaml');
  writeFileSync(changed, edit(text));
  return { ...(await composeConfig(command, changed, profiles, exampleEnvironment(scratch))), written: parse(edit(text)) };
}

describe('deploy/compose.yaml', () => {
  it('resolves with Compose and keeps the rules, with and without the rabbitmq profile', async () => {
    for (const profiles of [[], ['rabbitmq']]) {
      const { config, error } = await composeConfig(command, file, profiles);
      expect(error).toBeUndefined();
      expect(composeProblems(config!, parse(text))).toEqual([]);
      const services = Object.keys(config!.services);
      expect(services).toEqual(expect.arrayContaining(['app', 'worker-1', 'worker-2', 'postgres', 'redis', 'kubo']));
      // Compose v1 lists profiled services in `config` too, v2 only when the profile is on.
      if (profiles.length > 0) expect(config!.services.rabbitmq.profiles).toEqual(['rabbitmq']);
      // The app takes no runs: the workers do.
      expect(config!.services.app.environment.WORKERS).toBe('0');
    }
  });

  it('refuses what Compose refuses: an unknown key', async () => {
    const { error } = await configOf((t) => t.replace('    restart: unless-stopped\n    command: ["redis-server"', '    restrat: unless-stopped\n    command: ["redis-server"'));
    expect(error).toMatch(/restrat/);
  });

  it('refuses a start without DOCKER_GID, naming it', async () => {
    const env = { ...exampleEnvironment(deployDir), DOCKER_GID: undefined };
    const { error } = await composeConfig(command, file, [], env);
    expect(error).toMatch(/DOCKER_GID/);
  });

  const broken: [string, (text: string) => string, RegExp][] = [
    ['a service without a healthcheck', (t) => t.replace(/    healthcheck:\n      test: \["CMD", "redis-cli", "ping"\]\n(      .*\n)*/, ''), /^redis has no healthcheck$/],
    ['the Docker socket on the app', (t) => t.replace('      - app-data:/var/lib/task-mgmt', '      - app-data:/var/lib/task-mgmt\n      - /var/run/docker.sock:/var/run/docker.sock'), /^app mounts the Docker socket/],
    ['a secret written in the file', (t) => t.replace('      WORKERS: "0"', '      WORKERS: "0"\n      WEBHOOK_SECRET: hunter2'), /^app sets WEBHOOK_SECRET in the compose file/],
  ];

  it.each(broken)('refuses %s', async (_name, edit, problem) => {
    const { config, error, written } = await configOf(edit);
    expect(error).toBeUndefined();
    expect(composeProblems(config!, written)).toEqual(expect.arrayContaining([expect.stringMatching(problem)]));
  });
});
