/**
 * The worker's use case: take a run → fetch the source at its pinned SHA → build and run the
 * container → add /out to IPFS → record and report. Retryable failures (GitHub or the network
 * hiccuping before the task starts) give the run back to the queue; everything else ends it.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { DeferredError, errorMessage, RetryableError } from '../core/errors.js';
import { authorize } from '../core/policy/authorize.js';
import type { RepoHost } from '../ports/repo-host.js';
import { finishedReport, startedReport } from '../core/runs/check-text.js';
import type { RepoRef, Run, RunState } from '../core/runs/run.js';
import { formatDuration } from '../core/runs/units.js';
import type { CheckReport, CheckReporter } from '../ports/check-reporter.js';
import { BuildFailedError, type ExecuteResult, type Executor, type SandboxLimits } from '../ports/executor.js';
import type { IpfsStore } from '../ports/ipfs-store.js';
import type { RunHandler } from '../ports/run-queue.js';
import type { RunPatch, RunStore } from '../ports/run-store.js';
import type { SourceFetcher } from '../ports/source-fetcher.js';
import { LogSink } from './log-sink.js';

export interface WorkerDeps {
  store: RunStore;
  /** GitHub for one repository, to check again just before the container starts. */
  hostFor: (repo: RepoRef) => Promise<RepoHost>;
  /** Runs of one repository that may run at once; others wait queued. */
  maxRunningPerRepo: number;
  checks: CheckReporter;
  source: SourceFetcher;
  executor: Executor;
  ipfs: IpfsStore;
  log: Logger;
  dataDir: string;
  gatewayUrl: string;
  limits: SandboxLimits;
  workerId: string;
  now?: () => Date;
  /** How long a run stays ours without a heartbeat; renewed every third of it. */
  leaseMs?: number;
}

export function createRunHandler(deps: WorkerDeps): RunHandler {
  const now = deps.now ?? (() => new Date());
  const leaseMs = deps.leaseMs ?? 30_000;

  return async ({ runId }, { signal }) => {
    const found = await deps.store.getRun(runId);
    if (!found) {
      // A worker on another machine with its own embedded store cannot see the app's runs.
      const message = `run ${runId} is not in this worker's run store: workers on other machines need the same DATABASE_URL as the app`;
      deps.log.error({ runId }, message);
      throw new RetryableError(message, { retryAfterMs: 60_000 });
    }
    if (found.state !== 'queued') return;
    const run = await deps.store.claimRun(
      runId,
      { workerId: deps.workerId, leaseUntil: new Date(now().getTime() + leaseMs), maxRunningInRepo: deps.maxRunningPerRepo },
      now(),
    );
    if (run === 'busy') {
      throw new DeferredError(`${found.repo.owner}/${found.repo.name} already has ${deps.maxRunningPerRepo} runs going`, 3000);
    }
    if (!run) return; // another worker took it first, or it was cancelled
    const log = deps.log.child({ runId, repo: `${run.repo.owner}/${run.repo.name}`, sha: run.sha });
    log.info('run started');

    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const heartbeat = setInterval(() => {
      deps.store
        .renewLease(runId, deps.workerId, new Date(now().getTime() + leaseMs))
        .then((held) => {
          // The run was cancelled or handed to another worker: stop working on it.
          if (!held) controller.abort(new Error('the run is no longer held by this worker'));
        })
        .catch((error: unknown) => log.warn({ err: error }, 'could not renew the run lease'));
    }, Math.max(1000, Math.floor(leaseMs / 3)));

    const workDir = join(deps.dataDir, 'work', runId);
    const sink = new LogSink(join(deps.dataDir, 'logs', `${runId}.log`));
    await report(deps, log, run, startedReport(run));
    try {
      const outcome = await execute(deps, run, workDir, sink, controller.signal);
      await finish(deps, log, run, outcome.state, { ...outcome.patch, logTail: sink.tailText() }, now);
    } catch (error) {
      if (error instanceof RetryableError && !controller.signal.aborted) {
        log.warn({ err: error }, 'run handed back to the queue');
        sink.line(`task-mgmt: ${error.message}; the run will be tried again`);
        await deps.store.transition(runId, ['running'], 'queued', now(), { workerId: null, leaseUntil: null });
        throw error;
      }
      const cancelled = controller.signal.aborted;
      const message = cancelled ? 'the run was cancelled' : errorMessage(error);
      if (!cancelled) log.error({ err: error }, 'run failed');
      sink.line(`task-mgmt: ${message}`);
      await finish(deps, log, run, cancelled ? 'cancelled' : 'failed', { error: message, logTail: sink.tailText() }, now);
    } finally {
      clearInterval(heartbeat);
      signal.removeEventListener('abort', onAbort);
      await sink.close();
      await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
    }
  };
}

interface Outcome {
  state: RunState;
  patch: RunPatch;
}

async function execute(deps: WorkerDeps, run: Run, workDir: string, sink: LogSink, signal: AbortSignal): Promise<Outcome> {
  const sourceDir = join(workDir, 'source');
  const outDir = join(workDir, 'out');
  await rm(workDir, { recursive: true, force: true });
  await mkdir(sourceDir, { recursive: true });
  await mkdir(outDir, { recursive: true });

  sink.line(`task-mgmt: fetching ${run.repo.owner}/${run.repo.name} at ${run.sha}`);
  await deps.source.fetch(run.repo, run.sha, sourceDir, signal);

  let result: ExecuteResult;
  try {
    result = await deps.executor.execute({
      runId: run.id,
      contextDir: sourceDir,
      dockerfile: run.dockerfile,
      outDir,
      env: containerEnv(run),
      limits: deps.limits,
      signal,
      onLog: (line) => sink.line(line),
      beforeStart: () => checkStillAllowed(deps, run, sink),
    });
  } catch (error) {
    if (error instanceof BuildFailedError) {
      return { state: 'failed', patch: { error: `the image did not build: ${error.message}` } };
    }
    if (error instanceof NoLongerAllowedError) return { state: 'cancelled', patch: { error: error.message } };
    throw error;
  }
  sink.line(
    `task-mgmt: container ${result.cancelled ? 'cancelled' : result.timedOut ? 'timed out' : `exited with code ${result.exitCode}`} after ${formatDuration(result.durationMs)}`,
  );
  if (result.cancelled) return { state: 'cancelled', patch: { exitCode: result.exitCode, error: 'the run was cancelled' } };

  const added = await deps.ipfs.addPath(outDir, { signal });
  const patch: RunPatch = { exitCode: result.exitCode, outputCid: added.cid, outputFiles: added.entries };
  if (result.timedOut) {
    return { state: 'timed_out', patch: { ...patch, error: `the task ran longer than its ${formatDuration(deps.limits.timeoutMs)} timeout and was stopped` } };
  }
  if (result.exitCode !== 0) return { state: 'failed', patch: { ...patch, error: `the task exited with code ${result.exitCode}` } };
  return { state: 'succeeded', patch };
}

/** Refusal found just before the container starts: the run ends cancelled, unrun. */
class NoLongerAllowedError extends Error {
  override readonly name = 'NoLongerAllowedError';
}

/**
 * The SHA checked is the SHA run: just before the container starts, the pull request's head must
 * still be the pinned SHA and the requester must still have the role. A GitHub failure here is
 * retryable (the run goes back to the queue); it never lets the container start unchecked.
 */
async function checkStillAllowed(deps: WorkerDeps, run: Run, sink: LogSink): Promise<void> {
  const host = await deps.hostFor(run.repo);
  if (run.isPullRequest && run.number !== null) {
    const pull = await host.getPullRequest(run.number);
    if (pull.state !== 'open') throw new NoLongerAllowedError(`pull request #${run.number} was ${pull.state} before the task started; nothing ran`);
    if (pull.headSha !== run.sha) {
      throw new NoLongerAllowedError(
        `the head of #${run.number} moved from \`${run.sha.slice(0, 12)}\` to \`${pull.headSha.slice(0, 12)}\` before the task started; nothing ran`,
      );
    }
  }
  const decision = authorize({ actor: run.requestedBy, permission: await host.getPermission(run.requestedBy) });
  if (!decision.allowed) throw new NoLongerAllowedError(`checked again before the task started: ${decision.reason} Nothing ran.`);
  sink.line(`task-mgmt: checked again before starting: \`${run.sha.slice(0, 12)}\` is still the head and ${decision.reason}`);
}

/** What the container sees: the run id, its output folder and its parameters. Nothing else. */
export function containerEnv(run: Run): Record<string, string> {
  const env: Record<string, string> = { TASK_RUN_ID: run.id, TASK_OUTPUT_DIR: '/out' };
  for (const [key, value] of Object.entries(run.params)) env[`TASK_PARAM_${key.toUpperCase()}`] = value;
  return env;
}

async function finish(
  deps: WorkerDeps,
  log: Logger,
  run: Run,
  state: RunState,
  patch: RunPatch,
  now: () => Date,
): Promise<void> {
  const finished = await deps.store.transition(run.id, ['running'], state, now(), patch);
  if (!finished) {
    log.info('run was ended elsewhere before the worker finished');
    return;
  }
  log.info({ state, outputCid: finished.outputCid, exitCode: finished.exitCode }, 'run finished');
  await report(deps, log, finished, finishedReport(finished, deps.gatewayUrl));
}

/** Reporting must not fail a run: GitHub being slow is retried briefly, then logged. */
async function report(deps: WorkerDeps, log: Logger, run: Run, body: CheckReport): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await deps.checks.update(run, body);
      return;
    } catch (error) {
      if (attempt >= 3) {
        log.error({ err: error, status: body.status }, 'could not update the check run');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
    }
  }
}
