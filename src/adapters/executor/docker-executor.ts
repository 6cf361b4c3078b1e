/**
 * Executor on a Docker engine: builds the task image with the classic builder and runs it in
 * the sandbox README's "The sandbox" describes. Everything it creates carries the
 * label `task-mgmt.run=<runId>` and is removed before `execute` returns.
 */
import { createHash } from 'node:crypto';
import { chmod, chown, readFile, readdir, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import Dockerode from 'dockerode';
import {
  BuildFailedError,
  type ExecuteRequest,
  type ExecuteResult,
  type Executor,
} from '../../ports/executor.js';
import { DEFAULT_BUILD_TIMEOUT_MS, DEFAULT_TMPFS_BYTES } from './sandbox-defaults.js';
import { parseDockerfile } from '../../core/manifest/parse-dockerfile.js';
import { finalBaseImage, imagesToPull } from './dockerfile-images.js';
import { InvalidImageReferenceError, normaliseImageReference, type ImageReference } from './image-reference.js';
import { RegistryPolicy, type ResolveHost } from './registry-policy.js';

export interface ExecutorLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface DockerExecutorOptions {
  /** Engine client; the default honours DOCKER_HOST. */
  docker?: Dockerode;
  logger?: ExecutorLogger;
  /** Size of the writable tmpfs at /tmp (it counts against the memory limit). */
  tmpfsBytes?: number;
  /** BUILD_TIMEOUT: longest a build may take before it is stopped and the run fails. */
  buildTimeoutMs?: number;
  /** ALLOWED_REGISTRIES: registries a build may pull from; empty or unset: any public one. */
  allowedRegistries?: readonly string[] | undefined;
  /** DNS resolution of registry hosts; the system resolver by default. */
  resolveHost?: ResolveHost;
}

export const RUN_LABEL = 'task-mgmt.run';

/** uid:gid of `nobody`, used when the image does not name a user of its own. */
const NOBODY_UID = 65534;
const OUTPUT_DIR_IN_CONTAINER = '/out';

/** How long to wait for the engine to confirm a kill before giving up waiting. */
const KILL_GRACE_MS = 5000;
/** How long to wait for the last log bytes after the container exited. */
const LOG_DRAIN_MS = 2000;

type StopReason = 'timeout' | 'cancel' | 'build-timeout';

/** CFS period for the build's CPU quota (Docker's default, 100 ms). */
const CPU_PERIOD_US = 100_000;

const silentLogger: ExecutorLogger = { info() {}, warn() {}, error() {}, debug() {} };

export class DockerExecutor implements Executor {
  readonly #docker: Dockerode;
  readonly #log: ExecutorLogger;
  readonly #tmpfsBytes: number;
  readonly #buildTimeoutMs: number;
  readonly #registries: RegistryPolicy;

  constructor(options: DockerExecutorOptions = {}) {
    this.#docker = options.docker ?? new Dockerode();
    this.#log = options.logger ?? silentLogger;
    this.#tmpfsBytes = options.tmpfsBytes ?? DEFAULT_TMPFS_BYTES;
    if (!Number.isSafeInteger(this.#tmpfsBytes) || this.#tmpfsBytes <= 0) {
      throw new TypeError(`DockerExecutor: tmpfsBytes must be a positive integer, got ${options.tmpfsBytes}`);
    }
    this.#buildTimeoutMs = options.buildTimeoutMs ?? DEFAULT_BUILD_TIMEOUT_MS;
    if (!Number.isSafeInteger(this.#buildTimeoutMs) || this.#buildTimeoutMs <= 0) {
      throw new TypeError(`DockerExecutor: buildTimeoutMs must be a positive integer, got ${options.buildTimeoutMs}`);
    }
    this.#registries = new RegistryPolicy({
      allowedRegistries: options.allowedRegistries,
      ...(options.resolveHost ? { resolveHost: options.resolveHost } : {}),
    });
  }

  async execute(request: ExecuteRequest): Promise<ExecuteResult> {
    const { runId, limits } = request;
    validateRequest(request);
    const tag = imageTagFor(runId);
    const log = this.#log;

    // One controller stops whatever is in progress (build or container), for either reason.
    const stop = new AbortController();
    let stopReason: StopReason | undefined;
    const halt = (reason: StopReason) => {
      if (stopReason) return;
      stopReason = reason;
      stop.abort(reason);
    };
    const onAbort = () => halt('cancel');
    if (request.signal.aborted) halt('cancel');
    else request.signal.addEventListener('abort', onAbort, { once: true });
    // The hard timeout covers the build too: a RUN step can hang as well as the task.
    const timer = setTimeout(() => halt('timeout'), limits.timeoutMs);

    const buildContainers = new Set<string>();
    let imageBuilt = false;
    let container: Dockerode.Container | undefined;
    let imageId = '';
    /** What the Dockerfile's last stage stands on, as written there (null: scratch). */
    const built: { base: string | null } = { base: null };
    let baseImageDigest: string | null = null;
    let durationMs = 0;
    let exitCode: number | null = null;

    try {
      await this.#removeLeftovers(runId);
      if (!stopReason) {
        log.info({ runId, tag }, 'building task image');
        // A RUN step may not hang the worker for the whole task timeout.
        const buildTimer = setTimeout(() => halt('build-timeout'), this.#buildTimeoutMs);
        try {
          imageId = await this.#build(request, tag, stop.signal, buildContainers, built);
        } finally {
          clearTimeout(buildTimer);
        }
        imageBuilt = imageId !== '';
        if (imageBuilt) baseImageDigest = await this.#digestOf(built.base);
      }
      if (!stopReason && request.beforeStart) await request.beforeStart();
      if (!stopReason) {
        const image = await this.#docker.getImage(imageId).inspect();
        const user = await prepareUser(image.Config?.User ?? '', request.outDir, log);
        container = await this.#docker.createContainer({
          Image: imageId,
          Env: [...Object.entries(request.env).map(([k, v]) => `${k}=${v}`), `TASK_OUTPUT_DIR=${OUTPUT_DIR_IN_CONTAINER}`],
          Labels: { [RUN_LABEL]: runId },
          ...(user ? { User: user } : {}),
          AttachStdout: true,
          AttachStderr: true,
          Tty: false,
          HostConfig: {
            NetworkMode: 'none',
            ReadonlyRootfs: true,
            Tmpfs: { '/tmp': `rw,nosuid,nodev,size=${this.#tmpfsBytes}` },
            CapDrop: ['ALL'],
            SecurityOpt: ['no-new-privileges'],
            PidsLimit: limits.pidsLimit,
            Memory: limits.memoryBytes,
            // Equal to Memory: the container gets no swap.
            MemorySwap: limits.memoryBytes,
            NanoCpus: limits.nanoCpus,
            Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 1024 }],
            Binds: [
              `${request.outDir}:${OUTPUT_DIR_IN_CONTAINER}:rw`,
              ...(request.readOnlyMounts ?? []).map((mount) => `${mount.hostPath}:${mount.containerPath}:ro`),
            ],
            AutoRemove: false,
            Privileged: false,
          },
        });
        const run = await this.#run(container, request, stop.signal);
        exitCode = run.exitCode;
        durationMs = run.durationMs;
      }
    } finally {
      clearTimeout(timer);
      request.signal.removeEventListener('abort', onAbort);
      await this.#cleanUp(runId, tag, container, buildContainers, imageBuilt);
    }

    if (stopReason === 'build-timeout') {
      log.info({ runId, buildTimeoutMs: this.#buildTimeoutMs }, 'build stopped at BUILD_TIMEOUT');
      throw new BuildFailedError(`the build ran longer than BUILD_TIMEOUT (${formatDuration(this.#buildTimeoutMs)}) and was stopped`);
    }
    const timedOut = stopReason === 'timeout';
    const cancelled = stopReason === 'cancel';
    // A killed container's 137 says nothing about the task; report that it never finished.
    if (timedOut || cancelled) exitCode = null;
    log.info({ runId, exitCode, timedOut, cancelled, imageId, baseImageDigest, durationMs }, 'task container finished');
    return { exitCode, timedOut, cancelled, imageId, baseImageDigest, durationMs };
  }

  /** Builds the image; returns its id, or '' when the build was stopped. */
  async #build(
    request: ExecuteRequest,
    tag: string,
    signal: AbortSignal,
    buildContainers: Set<string>,
    built: { base: string | null },
  ): Promise<string> {
    const contextDir = await realpath(request.contextDir);
    const dockerfile = await checkedDockerfile(contextDir, request.dockerfile);
    const dockerfileText = await readFile(join(contextDir, dockerfile), 'utf8');
    const refusal = findForbiddenDockerfileFeature(dockerfileText);
    if (refusal) throw new BuildFailedError(`${request.dockerfile}: ${refusal}`);
    await this.#vetImages(request.dockerfile, dockerfileText, request.registries);
    // Vetting expanded every FROM already, so this one expands too.
    built.base = finalBaseImage(dockerfileText);
    if (signal.aborted) return '';

    // dockerode packs `src` with tar-fs, which stores symlinks as links (it does not follow
    // them), so nothing outside contextDir can enter the build context.
    const src = await readdir(contextDir);
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.#docker.buildImage(
        { context: contextDir, src },
        {
          dockerfile,
          t: tag,
          // Classic builder: BuildKit would need a frontend image and a registry.
          version: '1',
          // RUN steps get no network, so a build cannot fetch anything (and there is no bridge).
          networkmode: 'none',
          // Use a base image already on the host as it is; only a missing one is pulled.
          pull: false,
          rm: true,
          forcerm: true,
          labels: { [RUN_LABEL]: request.runId },
          // RUN steps get the task's memory (no swap) and CPU limits; the engine applies them to
          // each step container (Engine API, POST /build).
          memory: request.limits.memoryBytes,
          memswap: request.limits.memoryBytes,
          cpuperiod: CPU_PERIOD_US,
          cpuquota: Math.max(1000, Math.round((request.limits.nanoCpus / 1e9) * CPU_PERIOD_US)),
          abortSignal: signal,
        },
      );
    } catch (error) {
      if (signal.aborted) return '';
      throw asBuildError(error);
    }

    let imageId = '';
    let failure: string | undefined;
    const lines = new LineSplitter(request.onLog);
    try {
      for await (const event of jsonEvents(stream as unknown as Readable)) {
        if (typeof event.stream === 'string') {
          const running = /Running in ([0-9a-f]{12,64})/.exec(event.stream);
          if (running?.[1]) buildContainers.add(running[1]);
          await lines.push(event.stream);
        } else if (typeof event.status === 'string') {
          await lines.push(`${event.status}${typeof event.progress === 'string' ? ` ${event.progress}` : ''}\n`);
        }
        const id = (event.aux as { ID?: unknown } | undefined)?.ID;
        if (typeof id === 'string') imageId = id;
        if (event.error !== undefined || event.errorDetail !== undefined) {
          const detail = event.errorDetail as { message?: unknown } | undefined;
          failure = String(event.error ?? detail?.message ?? 'build failed');
          await lines.push(`${failure}\n`);
        }
      }
    } catch (error) {
      if (signal.aborted) return '';
      throw error;
    } finally {
      await lines.flush();
    }
    if (signal.aborted) return '';
    if (failure !== undefined) throw new BuildFailedError(failure);
    if (!imageId) imageId = (await this.#docker.getImage(tag).inspect()).Id;
    return imageId;
  }

  /**
   * Refuses the build before it starts when an image it would pull comes from a registry the
   * deployment does not allow (README "Security model"); images already on the engine are not
   * pulled, so only the address rules apply to them.
   */
  async #vetImages(dockerfile: string, text: string, registries?: readonly string[]): Promise<void> {
    let images;
    try {
      images = imagesToPull(text);
    } catch (error) {
      throw new BuildFailedError(`${dockerfile}: ${(error as Error).message}`, { cause: error });
    }
    for (const image of images) {
      const where = `${dockerfile} line ${image.line}: ${image.instruction}${image.instruction === 'FROM' ? ' ' : '='}${image.written}`;
      const expanded = image.written === image.reference ? '' : ` (${image.reference})`;
      let reference;
      try {
        reference = normaliseImageReference(image.reference);
      } catch (error) {
        if (error instanceof InvalidImageReferenceError) throw new BuildFailedError(`${where}${expanded} is refused: ${error.message}`);
        throw error;
      }
      const present = await this.#docker
        .getImage(reference.canonical)
        .inspect()
        .then(
          () => true,
          (error: unknown) => {
            if (isStatus(error, 404)) return false;
            throw error;
          },
        );
      // The org's list is asked first: it needs no name resolution.
      const rule = (present ? undefined : orgRegistryRefusal(reference, registries)) ?? (await this.#registries.refusal(reference, present));
      if (rule) throw new BuildFailedError(`${where}${expanded} is refused: ${rule}`);
    }
  }

  /**
   * The registry digest of the image `reference` names, as `docker inspect` lists it in
   * RepoDigests (one of the same repository first); a reference that carries its digest is its
   * own answer. Null when the engine knows none, or cannot say: provenance then says unknown.
   */
  async #digestOf(reference: string | null): Promise<string | null> {
    if (reference === null) return null;
    try {
      const wanted = normaliseImageReference(reference);
      const image = await this.#docker.getImage(wanted.canonical).inspect();
      return repoDigest(image.RepoDigests ?? [], wanted);
    } catch (error) {
      this.#log.debug({ err: error, reference }, 'the base image has no digest the engine knows');
      return null;
    }
  }

  async #run(
    container: Dockerode.Container,
    request: ExecuteRequest,
    signal: AbortSignal,
  ): Promise<{ exitCode: number | null; durationMs: number }> {
    // Attach before starting so that no early output is lost.
    const attached = (await container.attach({ stream: true, stdout: true, stderr: true })) as unknown as Readable;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const outLines = new LineSplitter(request.onLog);
    const errLines = new LineSplitter(request.onLog);
    // While the log's consumer asks to wait, no more output is read: the engine stops reading the
    // container's pipe, and the task blocks on its next write until the log caught up.
    let held = 0;
    let lastOutput = Date.now();
    const hold = (wait: Promise<void> | undefined) => {
      if (!wait) return;
      held += 1;
      attached.pause();
      void wait
        .catch((error: unknown) => this.#log.warn({ err: error, runId: request.runId }, 'the run log refused a line'))
        .finally(() => {
          held -= 1;
          lastOutput = Date.now();
          if (held === 0) attached.resume();
        });
    };
    // One decoder per stream: a character split between two chunks stays whole.
    const outText = new StringDecoder('utf8');
    const errText = new StringDecoder('utf8');
    stdout.on('data', (chunk: Buffer) => hold(outLines.push(outText.write(chunk))));
    stderr.on('data', (chunk: Buffer) => hold(errLines.push(errText.write(chunk))));
    attached.on('data', () => (lastOutput = Date.now()));
    this.#docker.modem.demuxStream(attached, stdout, stderr);
    let ended = false;
    const drained = new Promise<void>((resolve) => {
      attached.once('end', resolve);
      attached.once('close', resolve);
      attached.once('error', () => resolve());
    }).then(() => {
      ended = true;
    });

    if (signal.aborted) {
      attached.destroy();
      return { exitCode: null, durationMs: 0 };
    }

    const kill = () => {
      this.#log.info({ runId: request.runId, reason: signal.reason }, 'killing task container');
      container.kill({ signal: 'SIGKILL' }).catch((error: unknown) => {
        // 409: it already stopped; 404: it is gone. Anything else is worth a warning.
        if (!isStatus(error, 404, 409)) this.#log.warn({ err: error, runId: request.runId }, 'kill failed');
      });
    };

    const started = Date.now();
    await container.start();
    signal.addEventListener('abort', kill, { once: true });
    if (signal.aborted) kill();
    let exitCode: number | null;
    try {
      const waited = (await container.wait()) as { StatusCode?: number };
      exitCode = typeof waited.StatusCode === 'number' ? waited.StatusCode : null;
    } finally {
      signal.removeEventListener('abort', kill);
    }
    const durationMs = Date.now() - started;

    // The last output may still be on its way: wait for its end, or until it was quiet for
    // LOG_DRAIN_MS (time spent waiting for the log does not count).
    while (!ended && (held > 0 || Date.now() - lastOutput < LOG_DRAIN_MS)) await withTimeout(drained, 50);
    attached.destroy();
    await outLines.flush(outText.end());
    await errLines.flush(errText.end());
    return { exitCode, durationMs };
  }

  /** Removes the container and the image of this run; never throws (it runs in `finally`). */
  /**
   * A run that is tried again (its worker died) may still have its earlier container running
   * on this engine: stop it, so two copies of one run never write at once.
   */
  async #removeLeftovers(runId: string): Promise<void> {
    const leftovers = await this.#docker.listContainers({ all: true, filters: { label: [`${RUN_LABEL}=${runId}`] } });
    for (const leftover of leftovers) {
      this.#log.warn({ runId, container: leftover.Id }, 'removing a container left by an earlier attempt of this run');
      await this.#docker
        .getContainer(leftover.Id)
        .remove({ force: true, v: true })
        .catch((error: unknown) => {
          if (!isStatus(error, 404)) throw error;
        });
    }
  }

  async #cleanUp(
    runId: string,
    tag: string,
    container: Dockerode.Container | undefined,
    buildContainers: Set<string>,
    imageBuilt: boolean,
  ): Promise<void> {
    const attempt = async (what: string, action: () => Promise<unknown>) => {
      try {
        await action();
      } catch (error) {
        if (!isStatus(error, 404)) this.#log.warn({ err: error, runId, what }, 'clean-up failed');
      }
    };
    if (container) {
      await attempt('container', () => withTimeout(container.remove({ force: true, v: true }), KILL_GRACE_MS * 2));
    }
    // A stopped build may leave its step container behind for a moment; forcerm does not
    // cover a client that went away.
    for (const id of buildContainers) {
      await attempt('build container', () => this.#docker.getContainer(id).remove({ force: true, v: true }));
    }
    // By tag, without force: if the same image also has another name, only our tag goes.
    if (imageBuilt || buildContainers.size > 0) {
      await attempt('image', () => this.#docker.getImage(tag).remove({ noprune: false }));
    }
  }
}

/* ------------------------------------------------------------------------------------------ */

function validateRequest(request: ExecuteRequest): void {
  const { limits } = request;
  const positive: Array<[string, number]> = [
    ['limits.memoryBytes', limits.memoryBytes],
    ['limits.nanoCpus', limits.nanoCpus],
    ['limits.pidsLimit', limits.pidsLimit],
    ['limits.timeoutMs', limits.timeoutMs],
  ];
  for (const [field, value] of positive) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new TypeError(`DockerExecutor: ${field} must be a positive integer, got ${value}`);
    }
  }
  if (!isAbsolute(request.outDir)) {
    throw new TypeError(`DockerExecutor: outDir must be an absolute path, got ${request.outDir}`);
  }
  if (request.outDir.includes(':')) {
    // A colon would split the bind specification into other fields.
    throw new TypeError(`DockerExecutor: outDir must not contain ":", got ${request.outDir}`);
  }
  for (const mount of request.readOnlyMounts ?? []) {
    if (!isAbsolute(mount.hostPath) || !isAbsolute(mount.containerPath) || `${mount.hostPath}${mount.containerPath}`.includes(':')) {
      throw new TypeError(`DockerExecutor: read-only mounts need absolute paths without ":", got ${mount.hostPath} → ${mount.containerPath}`);
    }
  }
  for (const name of Object.keys(request.env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new TypeError(`DockerExecutor: env name ${JSON.stringify(name)} is not a valid variable name`);
    }
  }
}

/**
 * The RepoDigests entry (`name@sha256:…`) for `wanted`: its own digest when it names one, else the
 * entry of the same repository, else the first (the same image, pushed under another name).
 */
export function repoDigest(repoDigests: readonly string[], wanted: ImageReference): string | null {
  const named = (entry: string) => {
    try {
      const reference = normaliseImageReference(entry);
      return reference.registry === wanted.registry && reference.repository === wanted.repository;
    } catch {
      return false;
    }
  };
  if (wanted.digest) return repoDigests.find((entry) => named(entry) && entry.endsWith(`@${wanted.digest}`)) ?? `${wanted.registry}/${wanted.repository}@${wanted.digest}`;
  return repoDigests.find(named) ?? repoDigests[0] ?? null;
}

/**
 * Docker repository names allow lower-case letters, digits and single separators. When the run
 * id had to be changed to fit, a hash of the original keeps two runs from sharing a tag.
 */
export function imageTagFor(runId: string): string {
  const cleaned = runId
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64);
  const suffix = cleaned === runId && cleaned !== '' ? '' : `${cleaned ? '-' : ''}${createHash('sha256').update(runId).digest('hex').slice(0, 12)}`;
  return `task-mgmt/run-${cleaned}${suffix}`;
}

/** The Dockerfile must be a path inside the context, also after resolving symlinks. */
async function checkedDockerfile(contextDir: string, dockerfile: string): Promise<string> {
  if (isAbsolute(dockerfile)) throw new BuildFailedError(`Dockerfile path must be relative to the context: ${dockerfile}`);
  let resolved: string;
  try {
    resolved = await realpath(join(contextDir, dockerfile));
  } catch (error) {
    throw new BuildFailedError(`Dockerfile not found in the source: ${dockerfile}`, { cause: error });
  }
  const inside = relative(contextDir, resolved);
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
    throw new BuildFailedError(`Dockerfile must be inside the source folder: ${dockerfile}`);
  }
  // The engine wants forward slashes, relative to the context root.
  return inside.split(sep).join('/');
}

const remoteSourcePattern = /^(?:[a-z][a-z0-9+.-]*:\/\/|git@)/i;

/**
 * Reasons a Dockerfile is refused before it reaches the engine, or undefined when it is fine:
 * a `# syntax=` directive would load a frontend image, and `ADD <url>` fetches remote content
 * (see FACTS "Docker"). Read with the same parser as the review gate: directives only at the very
 * top, line continuations with the escape character, comment lines dropped, `ONBUILD ADD` too.
 */
export function findForbiddenDockerfileFeature(text: string): string | undefined {
  const dockerfile = parseDockerfile(text);
  if (dockerfile.directives.has('syntax')) return `the "# syntax=" directive is not allowed: it loads a build frontend image`;
  for (const instruction of dockerfile.instructions) {
    const add = instruction.keyword === 'ONBUILD' ? instruction.trigger : instruction;
    if (add?.keyword !== 'ADD') continue;
    // All but the destination; a lone argument is checked too.
    const sources = add.args.length === 1 ? add.args : add.args.slice(0, -1);
    for (const source of sources) {
      if (remoteSourcePattern.test(source)) return `ADD from a URL is not allowed (${source}): the build has no network`;
    }
  }
  return undefined;
}

/**
 * With no `User` in the image, run as nobody and hand outDir to that uid; an image that names
 * its own user keeps it, and outDir is opened up so that user can write too.
 */
async function prepareUser(imageUser: string, outDir: string, log: ExecutorLogger): Promise<string | undefined> {
  if (imageUser.trim() !== '') {
    await chmod(outDir, 0o777);
    return undefined;
  }
  try {
    await chown(outDir, NOBODY_UID, NOBODY_UID);
  } catch (error) {
    // Not root: chown is not allowed, so open the folder up instead.
    log.warn({ err: error, outDir }, 'could not chown the output folder; making it world-writable');
    await chmod(outDir, 0o777);
  }
  return `${NOBODY_UID}:${NOBODY_UID}`;
}

/** Parses the engine's newline-delimited JSON progress stream. */
async function* jsonEvents(stream: Readable): AsyncGenerator<Record<string, unknown>> {
  let buffer = '';
  for await (const chunk of stream) {
    buffer += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) yield parseEvent(line);
    }
  }
  if (buffer.trim()) yield parseEvent(buffer.trim());
}

function parseEvent(line: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(line);
    if (value && typeof value === 'object') return value as Record<string, unknown>;
  } catch {
    // Fall through: show the raw text rather than lose it.
  }
  return { stream: `${line}\n` };
}

/** Longest line handed to `onLog`; the rest of a longer one is dropped, so text without a newline cannot fill memory. */
const MAX_LINE_CHARS = 64 * 1024;

/**
 * Cuts text into lines for `onLog`, keeping a partial last line until more text or flush.
 * `push` and `flush` return the promise of an `onLog` that asked to wait (back-pressure).
 */
class LineSplitter {
  #pending = '';
  /** Dropping the rest of a line that passed MAX_LINE_CHARS, up to its newline. */
  #skipping = false;
  constructor(private readonly emit: (line: string) => void | Promise<void>) {}

  push(text: string): Promise<void> | undefined {
    const waits: Promise<void>[] = [];
    let start = 0;
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
      if (!this.#skipping) {
        const line = this.#pending + text.slice(start, newline);
        this.#send(line.endsWith('\r') ? line.slice(0, -1) : line, waits);
      }
      this.#pending = '';
      this.#skipping = false;
      start = newline + 1;
    }
    if (!this.#skipping && start < text.length) {
      this.#pending += text.slice(start);
      if (this.#pending.length > MAX_LINE_CHARS) {
        this.#send(`${this.#pending.slice(0, MAX_LINE_CHARS)}… (line cut)`, waits);
        this.#pending = '';
        this.#skipping = true;
      }
    }
    return settled(waits);
  }

  /** Hands on the partial last line (with `text`, the decoder's last characters). */
  flush(text = ''): Promise<void> | undefined {
    const waits: Promise<void>[] = [];
    const rest = this.push(text);
    if (rest) waits.push(rest);
    if (this.#pending !== '' && !this.#skipping) this.#send(this.#pending, waits);
    this.#pending = '';
    this.#skipping = false;
    return settled(waits);
  }

  #send(line: string, waits: Promise<void>[]): void {
    const wait = this.emit(line);
    if (wait) waits.push(wait);
  }
}

function settled(waits: Promise<void>[]): Promise<void> | undefined {
  if (waits.length === 0) return undefined;
  return waits.length === 1 ? waits[0] : Promise.all(waits).then(() => undefined);
}

function asBuildError(error: unknown): unknown {
  // The engine answered with an error status (bad Dockerfile path, missing base image):
  // a permanent failure of this build. Without a status the engine itself is unreachable.
  if (isStatus(error, 400, 404, 500)) {
    const message = (error as { json?: { message?: string }; message?: string }).json?.message ?? (error as Error).message;
    return new BuildFailedError(String(message), { cause: error });
  }
  return error;
}

/** `30m`, `2s`, `1500ms`: as BUILD_TIMEOUT would be written. */
function formatDuration(ms: number): string {
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function isStatus(error: unknown, ...codes: number[]): boolean {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' && codes.includes(status);
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The org policy's registry rule an image to be pulled breaks, or undefined (README "Org policy"). */
function orgRegistryRefusal(image: { registry: string; host: string }, registries: readonly string[] | undefined): string | undefined {
  if (registries === undefined) return undefined;
  const allowed = registries.map((entry) => entry.trim().toLowerCase());
  if (allowed.includes(image.registry.toLowerCase()) || allowed.includes(image.host)) return undefined;
  return `its registry ${image.registry} is not in the org policy's \`registries\` (${allowed.join(', ') || 'none'})`;
}
