/**
 * The Dockerfile and .dockerignore, checked without a Docker build (no registry is reachable
 * here; the GitHub workflow builds the image): a build stage and a runtime stage, the runtime
 * stage installed with `npm ci --omit=dev`, run as a user that is not root, with a HEALTHCHECK
 * and task-mgmt as its entry point; every file it copies from the context exists and passes
 * .dockerignore, which lets no secret in. Broken copies are refused, so the check is not empty.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import picomatch from 'picomatch';
import { describe, expect, it } from 'vitest';
import { parseDockerfile } from '../../src/core/manifest/parse-dockerfile.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
const dockerignore = readFileSync(join(root, '.dockerignore'), 'utf8');

/** Whether Docker leaves `path` out of the build context: the last pattern matching it or a parent folder wins. */
function ignored(path: string, ignoreFile: string): boolean {
  const rules = ignoreFile
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negated = line.startsWith('!');
      const pattern = (negated ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
      return { negated, matches: picomatch(pattern, { dot: true }) };
    });
  const parts = path.replace(/^\.\/|\/+$/g, '').split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let out = false;
  for (const rule of rules) if (prefixes.some((prefix) => rule.matches(prefix))) out = !rule.negated;
  return out;
}

function dockerfileProblems(text: string, ignoreFile: string): string[] {
  const problems: string[] = [];
  const instructions = parseDockerfile(text).instructions;
  const froms = instructions.filter((i) => i.keyword === 'FROM');
  if (froms.length < 2) problems.push('not multi-stage: a build stage and a runtime stage are expected');
  const lastFrom = instructions.lastIndexOf(froms.at(-1)!);
  const runtime = instructions.slice(lastFrom);
  const user = runtime.filter((i) => i.keyword === 'USER').at(-1)?.args[0];
  if (!user || /^(root|0)(:|$)/.test(user)) problems.push(`the runtime stage runs as ${user ?? 'root (no USER)'}`);
  const healthcheck = runtime.find((i) => i.keyword === 'HEALTHCHECK');
  if (!healthcheck || healthcheck.args[0]?.toUpperCase() === 'NONE') problems.push('the runtime stage has no HEALTHCHECK');
  const entry = runtime.filter((i) => i.keyword === 'ENTRYPOINT').at(-1)?.args ?? [];
  if (!entry.some((arg) => arg.endsWith('bin/task-mgmt.js'))) problems.push('the entry point is not bin/task-mgmt.js');
  const runs = instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args.join(' '));
  if (!runs.some((run) => /\bnpm ci\b/.test(run) && run.includes('--omit=dev'))) problems.push('no stage installs with npm ci --omit=dev');
  for (const copy of instructions.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')) {
    if (copy.flags.some((flag) => flag.name === 'from')) continue;
    for (const source of copy.args.slice(0, -1)) {
      if (!existsSync(join(root, source))) problems.push(`line ${copy.line}: ${source} is not in the repository`);
      else if (ignored(source, ignoreFile)) problems.push(`line ${copy.line}: ${source} is left out by .dockerignore`);
    }
  }
  for (const env of instructions.filter((i) => i.keyword === 'ENV' || i.keyword === 'ARG')) {
    for (const arg of env.args) {
      if (/SECRET|PASSWORD|TOKEN|PRIVATE_KEY\b/.test(arg.split('=')[0]!)) problems.push(`line ${env.line}: ${arg.split('=')[0]} is a secret baked into the image`);
    }
  }
  return problems;
}

describe('Dockerfile', () => {
  it('passes every check', () => {
    expect(dockerfileProblems(dockerfile, dockerignore)).toEqual([]);
  });

  it('keeps secrets and host build output out of the build context', () => {
    for (const path of ['.env', 'deploy/task-mgmt.env', 'deploy/secrets/private-key.pem', 'key.pem', 'node_modules', 'dist/src/main.js', 'data', '.git']) {
      expect(ignored(path, dockerignore), path).toBe(true);
    }
    for (const path of ['src/main.ts', 'tasks/index.ts', 'package-lock.json', 'bin/task-mgmt.js']) {
      expect(ignored(path, dockerignore), path).toBe(false);
    }
  });

  const broken: [string, string, string, RegExp][] = [
    ['one stage', dockerfile.replace(/FROM node:\$\{NODE_VERSION\}-bookworm AS (build|deps)\n/g, ''), dockerignore, /not multi-stage/],
    ['root at run time', dockerfile.replace('USER node', 'USER root'), dockerignore, /runs as root/],
    ['no HEALTHCHECK', dockerfile.replace(/HEALTHCHECK [^\n]*\\\n[^\n]*\n/, ''), dockerignore, /no HEALTHCHECK/],
    ['dev dependencies at run time', dockerfile.replace('RUN npm ci --omit=dev', 'RUN npm ci'), dockerignore, /npm ci --omit=dev/],
    ['a source .dockerignore leaves out', dockerfile, dockerignore.replace('!app.yml\n', ''), /app.yml is left out by .dockerignore/],
    ['a source that does not exist', dockerfile.replace('COPY bin ./bin', 'COPY bin2 ./bin'), dockerignore, /bin2 is not in the repository/],
    ['a secret in the image', dockerfile.replace('ENV NODE_ENV=production', 'ENV WEBHOOK_SECRET=x NODE_ENV=production'), dockerignore, /WEBHOOK_SECRET is a secret baked/],
  ];

  it.each(broken)('refuses %s', (_name, text, ignoreFile, problem) => {
    expect(dockerfileProblems(text, ignoreFile)).toEqual(expect.arrayContaining([expect.stringMatching(problem)]));
  });
});
