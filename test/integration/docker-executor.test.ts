/**
 * DockerExecutor against a real engine (start one with scripts/docker-up.sh). Each test builds
 * FROM the local busybox image with its own run id and checks that nothing labelled with that
 * id is left behind.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  DockerExecutor,
  RUN_LABEL,
  findForbiddenDockerfileFeature,
  imageTagFor,
} from '../../src/adapters/executor/docker-executor.js';
import { BuildFailedError, type ExecuteRequest, type SandboxLimits } from '../../src/ports/executor.js';
import { leftoversOf } from '../support/docker-leftovers.js';
import { requireServices } from '../support/services.js';

const MiB = 1024 * 1024;
const limits: SandboxLimits = { memoryBytes: 256 * MiB, nanoCpus: 1e9, pidsLimit: 64, timeoutMs: 20_000 };

describe('findForbiddenDockerfileFeature', () => {
  it.each([
    ['# syntax=docker/dockerfile:1\nFROM busybox', /syntax/],
    ['#SYNTAX = docker/dockerfile:1\nFROM busybox', /syntax/],
    ['# escape=`\n# syntax=x/y\nFROM busybox', /syntax/],
    ['FROM busybox\nADD http://example.com/x /x', /ADD from a URL/],
    ['FROM busybox\nadd HTTPS://example.com/x /x', /ADD from a URL/],
    ['FROM busybox\nADD --chown=1:1 \\\n  # a comment inside\n  ftp://h/x /x', /ADD from a URL/],
    ['FROM busybox\nADD ["local", "https://example.com/x", "/x/"]', /ADD from a URL/],
    ['FROM busybox\nADD git@github.com:o/r.git /r', /ADD from a URL/],
    ['FROM busybox\nONBUILD ADD http://example.com/x /x', /ADD from a URL/],
    ['# escape=`\nFROM busybox\nADD `\n  http://example.com/x /x', /ADD from a URL/],
  ])('refuses %j', (text, reason) => {
    expect(findForbiddenDockerfileFeature(text)).toMatch(reason);
  });

  it.each([
    'FROM busybox\nADD local.tar /x',
    'FROM busybox\nCOPY . /src\nRUN echo http://example.com',
    'FROM busybox\n# syntax=late comments are not directives\nCMD ["sh"]',
    'FROM busybox\nADD ./http /http',
    'FROM busybox\nLABEL url=http://example.com',
  ])('accepts %j', (text) => {
    expect(findForbiddenDockerfileFeature(text)).toBeUndefined();
  });
});

describe('imageTagFor', () => {
  it.each([
    ['abc123', 'task-mgmt/run-abc123'],
    ['run-7', 'task-mgmt/run-run-7'],
  ])('keeps a clean id %j', (id, tag) => {
    expect(imageTagFor(id)).toBe(tag);
  });

  it('lower-cases and hashes an id it had to change, so two ids never share a tag', () => {
    expect(imageTagFor('Run_7')).toMatch(/^task-mgmt\/run-run-7-[0-9a-f]{12}$/);
    expect(imageTagFor('Run_7')).not.toBe(imageTagFor('run_7'));
    expect(imageTagFor('../..')).toMatch(/^task-mgmt\/run-[0-9a-f]{12}$/);
  });
});

const dockerAvailable = await requireServices('docker');

describe.skipIf(!dockerAvailable)('DockerExecutor on a real engine', { timeout: 20_000 }, () => {
  const docker = new Dockerode();
  const executor = new DockerExecutor({ docker });
  const usedRunIds: string[] = [];
  const tempDirs: string[] = [];

  afterEach(async () => {
    for (const runId of usedRunIds.splice(0)) expect(await leftoversOf(docker, runId), `left by ${runId}`).toEqual([]);
  });

  afterAll(async () => {
    delete process.env.SECRET_PROBE;
    await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  async function tempDir(prefix: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `task-mgmt-${prefix}-`));
    tempDirs.push(dir);
    return dir;
  }

  interface Run {
    request: ExecuteRequest;
    /** Every line given to onLog. */
    lines: string[];
    /** Lines the container printed (after the build's last line). */
    output(): string[];
  }

  /** A context with the given Dockerfile, a fresh outDir and a unique run id. */
  async function prepare(dockerfile: string, overrides: Partial<ExecuteRequest> = {}): Promise<Run> {
    const runId = `it-${randomUUID().slice(0, 8)}`;
    usedRunIds.push(runId);
    const contextDir = await tempDir('ctx');
    const outDir = await tempDir('out');
    await writeFile(join(contextDir, 'Dockerfile'), dockerfile);
    const lines: string[] = [];
    const request: ExecuteRequest = {
      runId,
      contextDir,
      dockerfile: 'Dockerfile',
      outDir,
      env: {},
      limits,
      signal: new AbortController().signal,
      onLog: (line) => void lines.push(line),
      ...overrides,
    };
    return {
      request,
      lines,
      output: () => lines.slice(lines.findIndex((line) => line.startsWith('Successfully tagged')) + 1),
    };
  }

  /** A Dockerfile whose container runs `script` with busybox sh. */
  const shell = (script: string, extra = '') => `FROM busybox\n${extra}CMD ${JSON.stringify(['sh', '-c', script])}\n`;

  it('runs the task: files written to /out arrive on the host and exit code 0 is reported', async () => {
    const run = await prepare(shell('echo hello > /out/result.txt && mkdir /out/sub && echo deep > /out/sub/f && printf no-newline'));
    const result = await executor.execute(run.request);
    expect(result).toMatchObject({ exitCode: 0, timedOut: false, cancelled: false });
    expect(result.imageId).toMatch(/^sha256:[0-9a-f]{64}$/);
    // The base's registry digest as the engine knows it: none for a busybox built or loaded on this engine.
    const base = await docker.getImage('busybox').inspect();
    expect(result.baseImageDigest).toBe(base.RepoDigests?.find((entry) => entry.startsWith('busybox@')) ?? base.RepoDigests?.[0] ?? null);
    expect(result.durationMs).toBeGreaterThan(0);
    expect(await readFile(join(run.request.outDir, 'result.txt'), 'utf8')).toBe('hello\n');
    expect(await readFile(join(run.request.outDir, 'sub', 'f'), 'utf8')).toBe('deep\n');
    expect(run.lines.some((line) => line.startsWith('Step 1/'))).toBe(true);
    // The partial last line is flushed too.
    expect(run.output()).toEqual(['no-newline']);
  });

  it('gives the container only the env it was given, never the worker process env', async () => {
    process.env.SECRET_PROBE = 'x';
    const env = { TASK_PARAM_URL: 'https://example.com/a b', TASK_RUN_ID: 'r1' };
    const run = await prepare(shell('env'), { env });
    const result = await executor.execute(run.request);
    expect(result.exitCode).toBe(0);
    const seen = Object.fromEntries(
      run.output().map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    expect(seen).toMatchObject({ ...env, TASK_OUTPUT_DIR: '/out' });
    // What is left comes from the image (PATH) or from the engine and the shell themselves.
    const allowed = new Set([...Object.keys(env), 'TASK_OUTPUT_DIR', 'PATH', 'HOSTNAME', 'HOME', 'PWD', 'SHLVL']);
    expect(Object.keys(seen).filter((name) => !allowed.has(name))).toEqual([]);
    expect(seen).not.toHaveProperty('SECRET_PROBE');
  });

  it('reports a non-zero exit with the lines the task printed', async () => {
    const run = await prepare(shell('echo to-stdout; echo to-stderr >&2; exit 3'));
    const result = await executor.execute(run.request);
    expect(result).toMatchObject({ exitCode: 3, timedOut: false, cancelled: false });
    expect(run.output()).toEqual(expect.arrayContaining(['to-stdout', 'to-stderr']));
  });

  it('has no network but loopback', async () => {
    const run = await prepare(shell('ls /sys/class/net; tail -n +3 /proc/net/dev | cut -d: -f1'));
    expect((await executor.execute(run.request)).exitCode).toBe(0);
    expect(run.output().map((line) => line.trim())).toEqual(['lo', 'lo']);
  });

  it('has a read-only root filesystem with writable /tmp and /out', async () => {
    const run = await prepare(
      shell(
        'touch /x 2>/dev/null && echo root-writable || echo root-read-only; ' +
          'touch /tmp/t && echo tmp-writable; touch /out/o && echo out-writable',
      ),
    );
    expect((await executor.execute(run.request)).exitCode).toBe(0);
    expect(run.output()).toEqual(['root-read-only', 'tmp-writable', 'out-writable']);
    expect((await stat(join(run.request.outDir, 'o'))).uid).toBe(65534);
  });

  it('runs as nobody (65534) with no capabilities when the image names no user', async () => {
    const run = await prepare(shell('id -u; id -g; grep -E "^Cap(Eff|Prm|Bnd):" /proc/self/status; grep NoNewPrivs /proc/self/status'));
    expect((await executor.execute(run.request)).exitCode).toBe(0);
    const [uid, gid, ...status] = run.output();
    expect([uid, gid]).toEqual(['65534', '65534']);
    expect(status.map((line) => line.replace(/\s+/g, ' '))).toEqual([
      'CapPrm: 0000000000000000',
      'CapEff: 0000000000000000',
      'CapBnd: 0000000000000000',
      'NoNewPrivs: 1',
    ]);
  });

  it('keeps the user an image names, and lets it write to /out', async () => {
    const run = await prepare(shell('id -u; touch /out/f && echo out-writable', 'USER 1234:1234\n'));
    expect((await executor.execute(run.request)).exitCode).toBe(0);
    expect(run.output()).toEqual(['1234', 'out-writable']);
  });

  it('holds the pids limit against a fork loop', async () => {
    // The loop runs in a subshell because ash gives up when a fork fails; its sleepers stay.
    const script = '(i=0; while [ $i -lt 200 ]; do sleep 5 & i=$((i+1)); done) 2>/dev/null; set -- /proc/[0-9]*; echo $#';
    const run = await prepare(shell(script), { limits: { ...limits, pidsLimit: 32 } });
    const result = await executor.execute(run.request);
    expect(result.exitCode).toBe(0);
    const processes = Number(run.output().at(-1));
    expect(processes).toBeLessThanOrEqual(32);
    // It did fork until the limit stopped it.
    expect(processes).toBeGreaterThan(20);
  });

  it('creates the container with the sandbox host config and removes it when aborted', async () => {
    const controller = new AbortController();
    const run = await prepare(shell('echo started; sleep 600'), {
      signal: controller.signal,
      limits: { memoryBytes: 300 * MiB, nanoCpus: 500_000_000, pidsLimit: 50, timeoutMs: 20_000 },
    });
    const execution = executor.execute(run.request);
    const filters = { label: [`${RUN_LABEL}=${run.request.runId}`] };
    let found: Dockerode.ContainerInfo | undefined;
    for (let i = 0; i < 100 && !found; i++) {
      [found] = await docker.listContainers({ filters });
      if (!found) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(found, 'running container').toBeDefined();
    const inspected = await docker.getContainer(found!.Id).inspect();
    controller.abort();
    const host = inspected.HostConfig;
    expect(host).toMatchObject({
      NetworkMode: 'none',
      ReadonlyRootfs: true,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      PidsLimit: 50,
      Memory: 300 * MiB,
      MemorySwap: 300 * MiB,
      NanoCpus: 500_000_000,
      Privileged: false,
      AutoRemove: false,
      Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 1024 }],
      Binds: [`${run.request.outDir}:/out:rw`],
    });
    expect(Object.keys(host.Tmpfs ?? {})).toEqual(['/tmp']);
    expect(JSON.stringify(inspected)).not.toContain('docker.sock');
    expect(inspected.Config.User).toBe('65534:65534');
    expect(await execution).toMatchObject({ cancelled: true, timedOut: false, exitCode: null });
  });

  it('kills a task that runs past its timeout and says so', async () => {
    const run = await prepare(shell('echo started; sleep 600'), { limits: { ...limits, timeoutMs: 3000 } });
    const started = Date.now();
    const result = await executor.execute(run.request);
    const elapsed = Date.now() - started;
    expect(result).toMatchObject({ timedOut: true, cancelled: false, exitCode: null });
    expect(run.output()).toEqual(['started']);
    expect(elapsed).toBeLessThan(8000);
  });

  it('kills a running task within a couple of seconds of an abort', async () => {
    const controller = new AbortController();
    let abortedAt = 0;
    const run = await prepare(shell('echo started; sleep 600'), {
      signal: controller.signal,
      onLog: (line) => {
        run.lines.push(line);
        if (line === 'started') {
          abortedAt = Date.now();
          controller.abort();
        }
      },
    });
    const result = await executor.execute(run.request);
    expect(abortedAt).toBeGreaterThan(0);
    expect(Date.now() - abortedAt).toBeLessThan(2000);
    expect(result).toMatchObject({ cancelled: true, timedOut: false, exitCode: null });
  });

  it('stops a build that is aborted and leaves nothing behind', async () => {
    const controller = new AbortController();
    let abortedAt = 0;
    const run = await prepare('FROM busybox\nRUN echo building && sleep 600\n', {
      signal: controller.signal,
      onLog: (line) => {
        run.lines.push(line);
        if (line === 'building') {
          abortedAt = Date.now();
          controller.abort();
        }
      },
    });
    const result = await executor.execute(run.request);
    expect(abortedAt).toBeGreaterThan(0);
    expect(Date.now() - abortedAt).toBeLessThan(3000);
    expect(result).toMatchObject({ cancelled: true, exitCode: null, imageId: '' });
    const stepContainer = /Running in ([0-9a-f]+)/.exec(run.lines.join('\n'))?.[1];
    expect(stepContainer).toBeDefined();
    // The engine removes an aborted build's step container on its own, a moment after the build
    // request ends: give it up to 5 s, then the container must be gone.
    for (let i = 0; i < 50; i += 1) {
      const gone = await docker.getContainer(stepContainer!).inspect().then(() => false, () => true);
      if (gone) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await expect(docker.getContainer(stepContainer!).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('fails the build of a failing RUN step with BuildFailedError and its log', async () => {
    const run = await prepare('FROM busybox\nRUN echo before-failure && false\n');
    const failure = executor.execute(run.request);
    await expect(failure).rejects.toBeInstanceOf(BuildFailedError);
    await expect(failure).rejects.toThrow(/returned a non-zero code: 1/);
    expect(run.lines).toContain('before-failure');
  });

  it.each([
    ['a # syntax= directive', '# syntax=docker/dockerfile:1\nFROM busybox\n', /syntax/],
    ['ADD from a URL', 'FROM busybox\nadd \\\n  http://127.0.0.1:9/x /x\n', /ADD from a URL/],
  ])('refuses %s before building anything', async (_name, dockerfile, reason) => {
    const run = await prepare(dockerfile);
    await expect(executor.execute(run.request)).rejects.toThrow(reason);
    await expect(executor.execute(run.request)).rejects.toBeInstanceOf(BuildFailedError);
    expect(run.lines).toEqual([]);
  });

  it('sends symlinks in the context as links, never the files they point to', async () => {
    const outside = await tempDir('outside');
    await writeFile(join(outside, 'secret'), 'HOST-SECRET\n');
    const run = await prepare(shell('readlink /ctx/link; cat /ctx/link 2>/dev/null; echo done', 'COPY . /ctx\n'));
    await symlink(join(outside, 'secret'), join(run.request.contextDir, 'link'));
    const result = await executor.execute(run.request);
    expect(result.exitCode).toBe(0);
    expect(run.output()).toEqual([join(outside, 'secret'), 'done']);
  });

  it('fails the build that copies a symlink pointing out of the context', async () => {
    const outside = await tempDir('outside');
    await writeFile(join(outside, 'secret'), 'HOST-SECRET\n');
    const run = await prepare(shell('cat /copied', 'COPY link /copied\n'));
    await symlink(join(outside, 'secret'), join(run.request.contextDir, 'link'));
    // The engine resolves the link inside the context root, where its target does not exist.
    await expect(executor.execute(run.request)).rejects.toBeInstanceOf(BuildFailedError);
    expect(run.lines.join('\n')).not.toContain('HOST-SECRET');
  });
});
