/**
 * The build is sandboxed too (README "Security model"): RUN steps get the task's memory limit,
 * BUILD_TIMEOUT stops a build that hangs, and an image the build would pull from this machine,
 * a private network or a registry outside ALLOWED_REGISTRIES is refused before anything is built
 * or pulled. Against a real engine (scripts/docker-up.sh); every image is the local busybox.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DockerExecutor } from '../../src/adapters/executor/docker-executor.js';
import { BuildFailedError, type ExecuteRequest, type SandboxLimits } from '../../src/ports/executor.js';
import { leftoversOf } from '../support/docker-leftovers.js';
import { requireServices } from '../support/services.js';

const MiB = 1024 * 1024;
const limits: SandboxLimits = { memoryBytes: 256 * MiB, nanoCpus: 1e9, pidsLimit: 64, timeoutMs: 20_000 };

/**
 * The real engine for everything but starting a build, which it records and refuses: for the
 * references whose pull would leave loopback (a private address, Docker Hub) were the check missing.
 */
class NoBuildDocker extends Dockerode {
  readonly builds: unknown[] = [];
  override buildImage(...args: unknown[]): never {
    this.builds.push(args[1]);
    throw new Error('a build was started: the image should have been refused before it');
  }
}

/** A TCP server on loopback that counts connections, standing in for a service on the host. */
async function listeningProbe(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server: Server = createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { port: address.port, connections: () => count, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const dockerAvailable = await requireServices('docker');

describe.skipIf(!dockerAvailable)('the build sandbox on a real engine', { timeout: 60_000 }, () => {
  const docker = new Dockerode();
  const usedRunIds: string[] = [];
  const tempDirs: string[] = [];

  afterEach(async () => {
    for (const runId of usedRunIds.splice(0)) expect(await leftoversOf(docker, runId), `left by ${runId}`).toEqual([]);
  });

  afterAll(async () => {
    await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  async function prepare(dockerfile: string, overrides: Partial<ExecuteRequest> = {}): Promise<{ request: ExecuteRequest; lines: string[] }> {
    const runId = `it-${randomUUID().slice(0, 8)}`;
    usedRunIds.push(runId);
    const contextDir = await mkdtemp(join(tmpdir(), 'task-mgmt-ctx-'));
    const outDir = await mkdtemp(join(tmpdir(), 'task-mgmt-out-'));
    tempDirs.push(contextDir, outDir);
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
    return { request, lines };
  }

  it('gives RUN steps the task memory limit: a step allocating past it fails the build', async () => {
    const executor = new DockerExecutor({ docker });
    // About 200 MB held in one shell variable, against a 64 MiB limit without swap.
    const run = await prepare('FROM busybox\nRUN x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo "held ${#x}"\nCMD ["true"]\n', {
      limits: { ...limits, memoryBytes: 64 * MiB },
    });
    const outcome = await executor.execute(run.request).catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(BuildFailedError);
    expect(String(outcome)).toMatch(/returned a non-zero code: 137/);
    expect(run.lines).not.toContain('held 200000000');
  });

  it('stops a build running past BUILD_TIMEOUT, leaves no build container, and fails naming it', async () => {
    const executor = new DockerExecutor({ docker, buildTimeoutMs: 2000 });
    const marker = `building-${randomUUID().slice(0, 8)}`;
    const run = await prepare(`FROM busybox\nRUN echo ${marker} && sleep 600\n`);
    const started = Date.now();
    const outcome = await executor.execute(run.request).catch((error: unknown) => error);
    const elapsed = Date.now() - started;
    expect(outcome).toBeInstanceOf(BuildFailedError);
    expect(String(outcome)).toMatch(/the build ran longer than BUILD_TIMEOUT \(2s\) and was stopped/);
    expect(elapsed).toBeLessThan(10_000);
    expect(run.lines).toContain(marker);
    // `docker ps -a`: no container of any state still runs or holds the step.
    const all = await docker.listContainers({ all: true });
    expect(all.filter((container) => container.Command.includes(marker))).toEqual([]);
  });

  it.each([
    ['127.0.0.1', (port: number) => `FROM 127.0.0.1:${port}/x\n`, /line 1: FROM 127\.0\.0\.1:\d+\/x is refused: its registry 127\.0\.0\.1:\d+ is an IP address, a loopback address/],
    ['localhost', (port: number) => `FROM localhost:${port}/x\n`, /line 1: FROM localhost:\d+\/x is refused: its registry localhost:\d+ is this machine/],
    ['an ARG before FROM', (port: number) => `ARG R=127.0.0.1:${port}\nFROM $R/x\n`, /line 2: FROM \$R\/x \(127\.0\.0\.1:\d+\/x\) is refused: .*loopback/],
    ['COPY --from', (port: number) => `FROM busybox\nCOPY --from=127.0.0.1:${port}/x /a /b\n`, /line 2: COPY --from=127\.0\.0\.1:\d+\/x is refused: .*loopback/],
  ])('refuses a registry on %s before the engine contacts it', async (_name, dockerfile, reason) => {
    const probe = await listeningProbe();
    try {
      const executor = new DockerExecutor({ docker });
      const run = await prepare(dockerfile(probe.port));
      const outcome = await executor.execute(run.request).catch((error: unknown) => error);
      expect(probe.connections(), 'connections to the loopback service').toBe(0);
      expect(outcome).toBeInstanceOf(BuildFailedError);
      expect(String(outcome)).toMatch(reason);
      expect(run.lines, 'build output').toEqual([]);
    } finally {
      await probe.close();
    }
  });

  it.each([
    ['FROM localhost/x', 'FROM localhost/x\n', /line 1: FROM localhost\/x is refused: its registry localhost is this machine/],
    ['FROM $R/x with ARG R=10.0.0.1:5000', 'ARG R=10.0.0.1:5000\nFROM $R/x\n', /line 2: FROM \$R\/x \(10\.0\.0\.1:5000\/x\) is refused: its registry 10\.0\.0\.1:5000 is an IP address, a private address/],
    ['COPY --from=192.168.1.1/x', 'FROM busybox\nCOPY --from=192.168.1.1/x /a /b\n', /line 2: COPY --from=192\.168\.1\.1\/x is refused: its registry 192\.168\.1\.1 is an IP address, a private address/],
  ])('refuses %s before any build starts', async (_name, dockerfile, reason) => {
    const guarded = new NoBuildDocker();
    const run = await prepare(dockerfile);
    const outcome = await new DockerExecutor({ docker: guarded }).execute(run.request).catch((error: unknown) => error);
    expect(guarded.builds, 'builds started').toEqual([]);
    expect(outcome).toBeInstanceOf(BuildFailedError);
    expect(String(outcome)).toMatch(reason);
  });

  it('with ALLOWED_REGISTRIES=ghcr.io refuses a Docker Hub image the engine does not have, and builds the local busybox', async () => {
    const guarded = new NoBuildDocker();
    const missing = await prepare(`FROM busybox:absent-${randomUUID().slice(0, 8)}\n`);
    const outcome = await new DockerExecutor({ docker: guarded, allowedRegistries: ['ghcr.io'] }).execute(missing.request).catch((error: unknown) => error);
    expect(guarded.builds, 'builds started').toEqual([]);
    expect(outcome).toBeInstanceOf(BuildFailedError);
    expect(String(outcome)).toMatch(/FROM busybox:absent-\w+ is refused: its registry docker\.io is not in ALLOWED_REGISTRIES \(ghcr\.io\)/);

    const present = await prepare('FROM busybox\nCMD ["sh", "-c", "echo ran"]\n');
    const result = await new DockerExecutor({ docker, allowedRegistries: ['ghcr.io'] }).execute(present.request);
    expect(result).toMatchObject({ exitCode: 0, timedOut: false, cancelled: false });
    expect(present.lines).toContain('ran');
  });

  it('with the org policy\'s registries, refuses an image from elsewhere that the engine does not have, before any build', async () => {
    const guarded = new NoBuildDocker();
    const missing = await prepare(`FROM busybox:absent-${randomUUID().slice(0, 8)}\n`);
    const outcome = await new DockerExecutor({ docker: guarded, allowedRegistries: ['docker.io', 'ghcr.io'] })
      .execute({ ...missing.request, registries: ['ghcr.io'] })
      .catch((error: unknown) => error);
    expect(guarded.builds, 'builds started').toEqual([]);
    expect(outcome).toBeInstanceOf(BuildFailedError);
    expect(String(outcome)).toMatch(/FROM busybox:absent-\w+ is refused: its registry docker\.io is not in the org policy's `registries` \(ghcr\.io\)/);
  });
});
