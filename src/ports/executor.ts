/** Builds and runs one task container in the sandbox README's "The sandbox" describes. */

export interface SandboxLimits {
  /** Memory limit in bytes. */
  memoryBytes: number;
  /** CPU limit, in units of 1e-9 CPUs (Docker's NanoCpus). */
  nanoCpus: number;
  pidsLimit: number;
  /** Hard timeout, after which the container is killed and the result says timedOut. */
  timeoutMs: number;
}

export interface ExecuteRequest {
  runId: string;
  /** Folder holding the extracted source at the pinned SHA; used as the build context. */
  contextDir: string;
  /** Path of the Dockerfile relative to contextDir. */
  dockerfile: string;
  /** Host folder mounted read-write at /out. Created by the caller. */
  outDir: string;
  /** Host folders mounted read-only in the container (needed tasks' outputs at /in/<task>, a Procfile's repository). */
  readOnlyMounts?: { hostPath: string; containerPath: string }[];
  /** Environment of the container (TASK_* variables only; never a secret). */
  env: Record<string, string>;
  limits: SandboxLimits;
  /**
   * The org policy's registries for this run: a build pulls only from registries in both this
   * list and the deployment's ALLOWED_REGISTRIES (README "Org policy"). Unset: the deployment's alone.
   */
  registries?: readonly string[];
  /** Aborting stops the build or kills the container; the result then says cancelled. */
  signal: AbortSignal;
  /**
   * Called with each line the build and the container print, in order. A returned promise is
   * back-pressure: the executor reads no more output until it settles (the container blocks on
   * its full pipe meanwhile), so a task that prints faster than its log is stored cannot fill
   * the worker's memory.
   */
  onLog: (line: string) => void | Promise<void>;
  /**
   * Called after the image is built and just before the container starts: the last moment to
   * refuse (e.g. the pull request's head moved). If it throws, nothing starts and the error is
   * rethrown after clean-up.
   */
  beforeStart?: () => Promise<void>;
}

export interface ExecuteResult {
  exitCode: number | null;
  timedOut: boolean;
  cancelled: boolean;
  /** Id of the image built for the task (`docker inspect`'s Id), for provenance; '' when none was built. */
  imageId: string;
  /**
   * The image it was built FROM, by digest as the engine knows it from a registry
   * (`busybox@sha256:…`), for provenance; null when not known (a base built or loaded on the engine
   * itself has no registry digest) or when there is none (`FROM scratch`).
   */
  baseImageDigest: string | null;
  durationMs: number;
}

/** The build itself failed (bad Dockerfile, failing RUN step): the run fails, with the log. */
export class BuildFailedError extends Error {
  override readonly name = 'BuildFailedError';
}

export interface Executor {
  execute(request: ExecuteRequest): Promise<ExecuteResult>;
}
