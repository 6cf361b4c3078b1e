/**
 * The worker's use case: take a run → wait for the tasks it needs → fetch the source at its
 * pinned SHA when the type needs it → check once more that it may run → run the task type →
 * add its outputs to IPFS → record and report. Retryable failures (GitHub or the network
 * hiccuping before the task starts) give the run back to the queue; everything else ends it.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { DeferredError, errorMessage, RetryableError, WorkerStoppingError } from '../ports/errors.js';
import { addAndPin } from '../core/pins/add-and-pin.js';
import { defaultPinTtl, effectivePinTtl, type PinTtlLimits } from '../core/pins/pin-ttl.js';
import { checkBeforeStart } from '../core/run-service/run-service.js';
import type { OrgPolicies } from '../core/run-service/run-service.js';
import { finishedReport, progressReport, queuedReport, startedReport } from '../core/runs/check-text.js';
import { finishMove, type RepoRef, type Run } from '../core/runs/run.js';
import { formatDuration } from '../core/runs/units.js';
import type { CheckReport, CheckReporter } from '../ports/check-reporter.js';
import type { Executor, SandboxLimits } from '../ports/executor.js';
import type { IpfsBlockWriter, IpfsStore } from '../ports/ipfs-store.js';
import type { OutputFetcher } from '../ports/output-fetcher.js';
import type { RepoHost, RepoVisibility } from '../ports/repo-host.js';
import type { RunHandler } from '../ports/run-queue.js';
import type { Pins, RunLeases, RunLogs, RunPatch, RunRecords } from '../ports/run-store.js';
import type { SourceFetcher } from '../ports/source-fetcher.js';
import type { AnyTaskType, TaskInput, TaskProgress, TaskSettings } from '../ports/task-type.js';
import { LogSink } from './log-sink.js';
import { writeProvenance } from './provenance.js';
import { taskNetwork } from './tasks/index.js';
import { runToJson } from '../core/runs/run-json.js';
import type { EventBus } from '../ports/event-bus.js';
import type { RunMetrics } from '../ports/metrics.js';
import { NotRegularFileError, readSmallFile } from '../ports/untrusted-file.js';
import { checkOutputLimits, DEFAULT_OUTPUT_LIMITS, OutputLimitError, type OutputLimits } from './output-limits.js';

export interface WorkerDeps {
  store: RunRecords & RunLeases & Pins & RunLogs;
  /** GitHub for one repository, to check again just before the task starts. */
  hostFor: (repo: RepoRef) => Promise<RepoHost>;
  /** Runs of one repository that may run at once; others wait queued. */
  maxRunningPerRepo: number;
  checks: CheckReporter;
  source: SourceFetcher;
  executor: Executor;
  /** Where outputs go, and the provenance record beside them. */
  ipfs: IpfsStore & IpfsBlockWriter;
  /**
   * Where outputs of private (and internal) repositories go instead of `ipfs`: set when `ipfs`
   * publishes to Kubo and IPFS_PUBLISH_PRIVATE is not, to the embedded store in DATA_DIR, which
   * only the app's gateway serves, to those who may read the run.
   */
  privateIpfs?: IpfsStore & IpfsBlockWriter;
  /**
   * Gets a needed task's outputs that are not in this worker's DATA_DIR (another machine ran the
   * task), verified by CID. Without it such a run fails, saying so.
   */
  outputs?: OutputFetcher;
  taskTypes: ReadonlyMap<string, AnyTaskType>;
  settings: TaskSettings;
  /** Also tells other services about progress (run.progress), when events are configured. */
  events?: EventBus;
  log: Logger;
  dataDir: string;
  gatewayUrl: string;
  /** Default sandbox limits; a task's manifest may set its own. */
  limits: SandboxLimits;
  workerId: string;
  now?: () => Date;
  /** How long a run stays ours without a heartbeat; renewed every third of it. */
  leaseMs?: number;
  /** Least time between two progress updates of a check run (GitHub spaces writes a second apart). */
  progressIntervalMs?: number;
  /** Caps on a run's outputs (OUTPUT_MAX_BYTES, OUTPUT_MAX_FILES); 20 GiB and a million entries by default. */
  outputLimits?: OutputLimits;
  /** Time between two checks of a running task's outputs against the caps. */
  outputCheckIntervalMs?: number;
  /** Each owner's org policy, checked again just before the task starts; none when unset. */
  orgPolicies?: Pick<OrgPolicies, 'for'>;
  /** LOG_MAX_BYTES: most bytes of a run's log the store keeps (its head and its tail); 64 MiB by default. */
  logMaxBytes?: number;
  /** PIN_TTL_DEFAULT and PIN_TTL_MAX, for runs recorded without a TTL; 30 and 365 days unless given. */
  pinTtl?: PinTtlLimits;
  /** Told about each run this worker ended, once it is recorded. */
  onRunFinished?: (run: Run) => void;
  /** Run durations and the bytes of outputs added, for the deployment's metrics. */
  metrics?: Pick<RunMetrics, 'runFinished' | 'outputsAdded'>;
}

/** LOG_MAX_BYTES unless configured. */
export const DEFAULT_LOG_MAX_BYTES = 64 * 1024 * 1024;

/** Where a run's outputs stay on the worker, for the tasks that need them. */
export function outputDir(dataDir: string, runId: string): string {
  return join(dataDir, 'outputs', runId);
}

export function createRunHandler(deps: WorkerDeps): RunHandler {
  const now = deps.now ?? (() => new Date());
  const leaseMs = deps.leaseMs ?? 30_000;

  /** Takes the run, or says why not: null when there is nothing to do (taken, cancelled, skipped). */
  const claim = async (runId: string): Promise<Run | null> => {
    // The store holds a run to the smaller of this limit and the run's own spec.concurrency.
    const terms = () => ({ workerId: deps.workerId, leaseUntil: new Date(now().getTime() + leaseMs), maxRunningInRepo: deps.maxRunningPerRepo });
    // Most runs need no other task: one statement claims them, with no read first.
    const quick = await deps.store.claimRun(runId, { ...terms(), onlyWithoutNeeds: true }, now());
    if (quick !== null && quick !== 'busy') return quick;
    const found = await deps.store.getRun(runId);
    if (!found) {
      // A worker on another machine with its own embedded store cannot see the app's runs.
      const message = `run ${runId} is not in this worker's run store: workers on other machines need the same DATABASE_URL as the app`;
      deps.log.error({ runId }, message);
      throw new RetryableError(message, { retryAfterMs: 60_000 });
    }
    if (found.state !== 'queued') return null;
    // 'busy' already says the run needs nothing and its repository is full: no second claim.
    if (quick === null) {
      if (!(await neededTasksReady(deps, found, now))) return null;
      const run = await deps.store.claimRun(runId, terms(), now());
      if (run !== 'busy') return run; // null: another worker took it first, or it was cancelled
    }
    throw new DeferredError(`${found.repo.owner}/${found.repo.name} already has ${runningInRepo(deps, found)} runs going`, 3000);
  };

  return async ({ runId }, { signal }) => {
    const run = await claim(runId);
    if (!run) return;
    const log = deps.log.child({ runId, repo: `${run.repo.owner}/${run.repo.name}`, sha: run.sha, task: run.task });
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
    const sink = new LogSink({
      store: deps.store,
      runId,
      maxBytes: deps.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES,
      onStoreError: (error) => log.error({ err: error }, 'the run store did not take a chunk of the run log; the run goes on'),
    });
    const progress = new ProgressReporter(deps, log, run, deps.progressIntervalMs ?? 10_000);
    const facts: RunFacts = {};
    await report(deps, log, run, startedReport(run));
    try {
      const outcome = await execute(deps, run, workDir, sink, progress, controller.signal, facts);
      progress.stop();
      // The last lines are stored before the end is recorded: whoever sees the run end reads them too.
      await sink.flush();
      await finish(deps, log, run, outcome.state, { ...outcome.patch, logTail: sink.tailText() }, now, facts);
    } catch (error) {
      progress.stop();
      // A worker shutting down stops the task and hands the run back, as it would on a retryable failure.
      const stopping = controller.signal.reason instanceof WorkerStoppingError ? controller.signal.reason : null;
      if ((error instanceof RetryableError && !controller.signal.aborted) || stopping) {
        const reason = stopping ?? (error as RetryableError);
        log.warn({ err: reason }, 'run handed back to the queue');
        sink.line(`task-mgmt: ${reason.message}; the run will be tried again`);
        await sink.flush();
        const back = await deps.store.transition(runId, 'requeue', now(), { workerId: null, leaseUntil: null }, { heldBy: deps.workerId });
        // The check run said "running": it goes back to queued with the run, saying why.
        if (back) {
          const queued = queuedReport(back);
          await report(deps, log, back, { ...queued, summary: `${queued.summary}\n\nQueued again: ${reason.message}; it starts over when a worker takes it.` });
        }
        throw reason;
      }
      const refused = error instanceof NoLongerAllowedError;
      const cancelled = controller.signal.aborted || refused;
      const message = refused ? error.message : cancelled ? 'the run was cancelled' : errorMessage(error);
      if (!cancelled) log.error({ err: error }, 'run failed');
      sink.line(`task-mgmt: ${message}`);
      await sink.flush();
      await finish(deps, log, run, cancelled ? 'cancelled' : 'failed', { error: message, logTail: sink.tailText() }, now, facts);
    } finally {
      clearInterval(heartbeat);
      signal.removeEventListener('abort', onAbort);
      await sink.close();
      await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
    }
  };
}

/**
 * A run waits until every task it needs has succeeded; if one of them ended otherwise, the run
 * is cancelled with that reason (its check run says why). False when the run cannot start now.
 */
async function neededTasksReady(deps: WorkerDeps, run: Run, now: () => Date): Promise<boolean> {
  if (run.needs.length === 0) return true;
  const needed = await Promise.all(run.needs.map((id) => deps.store.getRun(id)));
  const broken = needed.find((other) => !other || (other.state !== 'succeeded' && ['failed', 'cancelled', 'timed_out'].includes(other.state)));
  if (broken !== undefined) {
    const reason = broken ? `the task \`${broken.task}\` it needs ended ${broken.state.replace('_', ' ')}, so it did not run` : 'a task it needs is missing';
    const cancelled = await deps.store.transition(run.id, 'skip', now(), { error: reason });
    if (cancelled) await report(deps, deps.log, cancelled, finishedReport(cancelled, deps.gatewayUrl));
    return false;
  }
  if (needed.some((other) => other!.state !== 'succeeded')) throw new DeferredError('waiting for the tasks it needs', 2000);
  return true;
}

/** How a task that ran ends. */
type FinalState = Parameters<typeof finishMove>[0];

interface Outcome {
  state: FinalState;
  patch: RunPatch;
}

/** What the provenance record needs of a run besides its record, as the task learns it. */
interface RunFacts {
  /** The store the outputs went to (the record goes beside them). */
  ipfs?: IpfsStore & IpfsBlockWriter;
  image?: { id: string; baseDigest: string | null };
  /** When the outputs' pin ends, once they are added. */
  pinnedUntil?: Date;
}

class NoLongerAllowedError extends Error {
  override readonly name = 'NoLongerAllowedError';
}

class TaskTimeout extends Error {
  override readonly name = 'TaskTimeout';
}

async function execute(
  deps: WorkerDeps,
  run: Run,
  workDir: string,
  sink: LogSink,
  progress: ProgressReporter,
  signal: AbortSignal,
  facts: RunFacts,
): Promise<Outcome> {
  const type = deps.taskTypes.get(run.taskType);
  if (!type) return { state: 'failed', patch: { error: `\`${run.taskType}\` is not a task type this worker knows` } };
  const params = type.params.safeParse(run.spec.with);
  if (!params.success) {
    return { state: 'failed', patch: { error: `the parameters of \`${run.task}\` are not valid for ${type.name}: ${params.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}` } };
  }

  const sourceDir = join(workDir, 'source');
  const scratchDir = join(workDir, 'scratch');
  const outDir = outputDir(deps.dataDir, run.id);
  await rm(workDir, { recursive: true, force: true });
  await rm(outDir, { recursive: true, force: true });
  for (const dir of [sourceDir, scratchDir, outDir]) await mkdir(dir, { recursive: true });

  if (type.needsSource) {
    sink.line(`task-mgmt: fetching ${run.repo.owner}/${run.repo.name} at ${run.sha}`);
    await deps.source.fetch(run.repo, run.sha, sourceDir, signal);
  }
  const { ipfs, published } = await whereOutputsGo(deps, run, sink);
  facts.ipfs = ipfs;
  const inputs = await neededOutputs(deps, run, { workDir, sink, signal, published });
  // What the task leaves unset gets the deployment's default, within the org policy's caps.
  const caps = run.spec.caps ?? {};
  const limits: SandboxLimits = {
    memoryBytes: run.spec.memoryBytes ?? Math.min(deps.limits.memoryBytes, caps.memoryBytes ?? Infinity),
    nanoCpus: run.spec.cpus !== undefined ? Math.round(run.spec.cpus * 1e9) : Math.min(deps.limits.nanoCpus, caps.cpus !== undefined ? Math.round(caps.cpus * 1e9) : Infinity),
    pidsLimit: run.spec.pids ?? Math.min(deps.limits.pidsLimit, caps.pids ?? Infinity),
    timeoutMs: run.spec.timeoutMs ?? Math.min(deps.limits.timeoutMs, caps.timeoutMs ?? Infinity),
  };

  // Types that start no container get the same hard timeout through their abort signal.
  const taskController = new AbortController();
  const forward = () => taskController.abort(signal.reason);
  signal.addEventListener('abort', forward, { once: true });
  const timer = type.startsContainer ? undefined : setTimeout(() => taskController.abort(new TaskTimeout()), limits.timeoutMs);
  const progressFile = new ProgressFileReader(outDir, (why) => {
    sink.line(`task-mgmt: ${why}`);
    deps.log.warn({ runId: run.id }, why);
  });
  const progressPoll = setInterval(() => void progressFile.read().then((p) => p && progress.update(p)), Math.min(5000, deps.progressIntervalMs ?? 5000));
  const deployed = deps.outputLimits ?? DEFAULT_OUTPUT_LIMITS;
  const outputLimits =
    caps.outputBytes !== undefined && caps.outputBytes < deployed.maxBytes ? { ...deployed, maxBytes: caps.outputBytes, bytesRule: "the org policy's `limits.output`" } : deployed;
  const stopWatching = watchOutputs(outDir, outputLimits, deps.outputCheckIntervalMs ?? 3000, (error) => taskController.abort(error));
  const beforeStart = () => checkStillAllowed(deps, run, sink);
  const started = Date.now();
  try {
    if (!type.startsContainer) await beforeStart();
    const result = await type.run(
      {
        runId: run.id,
        signal: taskController.signal,
        log: (line) => sink.line(line),
        progress: (update) => progress.update(update),
        ipfs,
        executor: run.spec.registries ? withRegistries(deps.executor, run.spec.registries) : deps.executor,
        outDir,
        scratchDir,
        sourceDir,
        inputs,
        limits,
        env: containerEnv(run),
        settings: deps.settings,
        ...taskNetwork(type, deps.settings),
        ...(type.startsContainer ? { beforeStart } : {}),
      },
      params.data,
    );
    if (result.image) facts.image = result.image;
    if (taskController.signal.reason instanceof OutputLimitError) throw taskController.signal.reason;
    const timedOut = taskController.signal.reason instanceof TaskTimeout;
    let state: FinalState = timedOut ? 'timed_out' : (result.state ?? 'succeeded');
    if (signal.reason instanceof WorkerStoppingError) throw signal.reason;
    if (signal.aborted) state = 'cancelled';
    sink.line(`task-mgmt: ${run.task} ended ${state.replace('_', ' ')} after ${formatDuration(Date.now() - started)}${result.exitCode != null ? ` (exit code ${result.exitCode})` : ''}`);
    if (state === 'cancelled') return { state, patch: { exitCode: result.exitCode ?? null, error: result.error ?? 'the run was cancelled' } };

    stopWatching();
    const outputs = await checkOutputLimits(outDir, outputLimits, signal);
    // Pinned from when the outputs are added, for the TTL the request was granted (README "Pins").
    const clock = deps.now ?? (() => new Date());
    const pinnedUntil = new Date(clock().getTime() + effectivePinTtl(run.spec.pinTtlMs, deps.pinTtl ?? defaultPinTtl));
    const { added, pin } = await addAndPin({ store: deps.store, ipfs, now: clock }, { runId: run.id, kind: 'outputs', path: outDir, pinnedUntil, signal });
    facts.pinnedUntil = pin.pinnedUntil;
    deps.metrics?.outputsAdded(outputs.bytes);
    const patch: RunPatch = { exitCode: result.exitCode ?? null, outputCid: added.cid, outputFiles: added.entries, metadata: result.metadata ?? {} };
    if (state === 'timed_out') return { state, patch: { ...patch, error: `the task ran longer than its ${formatDuration(limits.timeoutMs)} timeout and was stopped` } };
    if (state === 'failed') return { state, patch: { ...patch, error: result.error ?? 'the task failed' } };
    return { state, patch };
  } catch (error) {
    const overLimit = error instanceof OutputLimitError ? error : taskController.signal.reason instanceof OutputLimitError ? taskController.signal.reason : undefined;
    if (overLimit) {
      // Nothing of it is added; what it wrote goes now rather than filling the disk until cleanup.
      await rm(outDir, { recursive: true, force: true }).catch(() => undefined);
      return { state: 'failed', patch: { error: overLimit.message } };
    }
    if (taskController.signal.reason instanceof TaskTimeout) {
      return { state: 'timed_out', patch: { error: `the task ran longer than its ${formatDuration(limits.timeoutMs)} timeout and was stopped` } };
    }
    throw error;
  } finally {
    if (timer) clearTimeout(timer);
    clearInterval(progressPoll);
    stopWatching();
    signal.removeEventListener('abort', forward);
  }
}

/**
 * Where a run's outputs go, and so where those of the tasks it needs went: the deployment's store,
 * or for a repository that is not public, when private outputs are kept off Kubo, the store in
 * DATA_DIR (README "Private repositories"). A visibility GitHub does not tell counts as private.
 */
async function whereOutputsGo(deps: WorkerDeps, run: Run, sink: LogSink): Promise<{ ipfs: IpfsStore & IpfsBlockWriter; published: boolean }> {
  if (!deps.privateIpfs) return { ipfs: deps.ipfs, published: true };
  const repo = `${run.repo.owner}/${run.repo.name}`;
  let visibility: RepoVisibility | null = null;
  try {
    visibility = await (await deps.hostFor(run.repo)).getVisibility();
  } catch (error) {
    deps.log.warn({ err: error, runId: run.id }, 'could not learn whether the repository is public');
  }
  if (visibility === 'public') return { ipfs: deps.ipfs, published: true };
  const why = visibility === null ? `GitHub did not say whether ${repo} is public` : `${repo} is ${visibility}`;
  sink.line(`task-mgmt: ${why}, so its outputs are not sent to Kubo (IPFS_PUBLISH_PRIVATE is off): they stay in this deployment's own store, served by the app's gateway to those who may read the run`);
  return { ipfs: deps.privateIpfs, published: false };
}

/**
 * Outputs of the tasks a run needs, by task name: in this worker's DATA_DIR when it ran them,
 * else fetched by CID and verified (README "Pipelines across machines"), then kept there like its
 * own. `published` says whether they went to the deployment's IPFS node or only to the app's store.
 */
async function neededOutputs(
  deps: WorkerDeps,
  run: Run,
  how: { workDir: string; sink: LogSink; signal: AbortSignal; published: boolean },
): Promise<Record<string, TaskInput>> {
  const inputs: Record<string, TaskInput> = {};
  for (const id of run.needs) {
    const needed = await deps.store.getRun(id);
    if (!needed || needed.outputCid === null) throw new Error(`the outputs of a needed task (${id}) are not recorded`);
    const dir = outputDir(deps.dataDir, id);
    const present = await stat(dir).then(
      (info) => info.isDirectory(),
      () => false,
    );
    if (!present) await fetchOutputs(deps, needed, dir, how);
    inputs[needed.task] = { dir, cid: needed.outputCid, files: needed.outputFiles, metadata: needed.metadata };
  }
  return inputs;
}

async function fetchOutputs(deps: WorkerDeps, needed: Run, dir: string, how: { workDir: string; sink: LogSink; signal: AbortSignal; published: boolean }): Promise<void> {
  const what = `the outputs of \`${needed.task}\` (${needed.outputCid})`;
  if (!deps.outputs) throw new Error(`${what} are not on this worker, which cannot fetch them`);
  how.sink.line(`task-mgmt: ${what} are not on this worker: fetching them by CID`);
  const started = Date.now();
  try {
    await deps.outputs.fetch(needed.outputCid!, dir, {
      published: how.published,
      limits: deps.outputLimits ?? DEFAULT_OUTPUT_LIMITS,
      scratchDir: join(how.workDir, 'fetch', needed.id),
      signal: how.signal,
    });
  } catch (error) {
    if (error instanceof RetryableError || how.signal.aborted) throw error;
    throw new Error(`${what} could not be fetched: ${errorMessage(error)}`, { cause: error });
  }
  how.sink.line(`task-mgmt: fetched ${what}, every block checked against its CID, in ${formatDuration(Date.now() - started)}`);
}

/**
 * Checks a running task's outputs against the caps every `intervalMs`, one walk at a time, and
 * calls `exceeded` once when they pass one (the worker then aborts the task, which kills its
 * container). Returns the function that stops the checks.
 */
function watchOutputs(outDir: string, limits: OutputLimits, intervalMs: number, exceeded: (error: OutputLimitError) => void): () => void {
  const stop = new AbortController();
  void (async () => {
    while (!stop.signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, intervalMs).unref());
      if (stop.signal.aborted) return;
      try {
        await checkOutputLimits(outDir, limits, stop.signal);
      } catch (error) {
        if (error instanceof OutputLimitError) {
          exceeded(error);
          return;
        }
        // Stopped, or the folder changed under the walk: the next round or the check before the add decides.
      }
    }
  })();
  return () => stop.abort();
}

/**
 * A container reports progress by writing `{"done": n, "total": m}` to /out/.progress.json. The
 * file is opened only if it is a regular file and read up to 64 KiB (README "Limits on untrusted
 * input"); anything else there is ignored, and said once per run. One read at a time.
 */
class ProgressFileReader {
  private reading = false;
  private told = false;

  constructor(
    private readonly outDir: string,
    private readonly ignored: (why: string) => void,
  ) {}

  async read(): Promise<TaskProgress | null> {
    if (this.reading) return null;
    this.reading = true;
    try {
      const { bytes, complete } = await readSmallFile(join(this.outDir, '.progress.json'));
      if (!complete) return this.ignore('.progress.json is larger than 64 KiB, so it was not read');
      const parsed = JSON.parse(bytes.toString('utf8')) as { done?: unknown; total?: unknown; message?: unknown };
      if (typeof parsed.done !== 'number') return null;
      return {
        done: parsed.done,
        ...(typeof parsed.total === 'number' ? { total: parsed.total } : {}),
        ...(typeof parsed.message === 'string' ? { message: parsed.message.slice(0, 200) } : {}),
      };
    } catch (error) {
      if (error instanceof NotRegularFileError) return this.ignore(`.progress.json is a ${error.fileType}, not a regular file, so it was not read`);
      return null; // not there yet, or half written
    } finally {
      this.reading = false;
    }
  }

  private ignore(why: string): null {
    if (!this.told) this.ignored(`${why}; progress is not shown`);
    this.told = true;
    return null;
  }
}

/** Shows progress in the check run, at most once per interval (each update is a GitHub write). */
class ProgressReporter {
  private latest: TaskProgress | null = null;
  private sent: TaskProgress | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly deps: WorkerDeps,
    private readonly log: Logger,
    private readonly run: Run,
    intervalMs: number,
  ) {
    this.timer = setInterval(() => void this.flush(), intervalMs);
  }

  update(progress: TaskProgress): void {
    this.latest = progress;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async flush(): Promise<void> {
    const latest = this.latest;
    if (!latest || latest === this.sent) return;
    this.sent = latest;
    // Kept on the run too, so the dashboard and the API show it to whoever looks later.
    await this.deps.store.updateRun(this.run.id, { progress: latest }, new Date()).catch((error: unknown) => this.log.warn({ err: error }, 'could not keep progress'));
    await this.deps.checks.update(this.run, progressReport(this.run, latest)).catch((error: unknown) => this.log.warn({ err: error }, 'could not report progress'));
    await this.deps.events
      ?.publish('run.progress', { ...runToJson(this.run), progress: latest })
      .catch((error: unknown) => this.log.warn({ err: error }, 'could not publish progress'));
  }
}

/** Runs of the run's repository that may go at once: REPO_CONCURRENCY, or the org policy's `concurrency` when smaller. */
function runningInRepo(deps: WorkerDeps, run: Run): number {
  return Math.min(deps.maxRunningPerRepo, run.spec.concurrency ?? Infinity);
}

/** The executor, told the org policy's registries for this run's builds. */
function withRegistries(executor: Executor, registries: readonly string[]): Executor {
  return { execute: (request) => executor.execute({ ...request, registries }) };
}

/** Just before the task starts, the run service checks again; a refusal ends the run unrun. */
async function checkStillAllowed(deps: WorkerDeps, run: Run, sink: LogSink): Promise<void> {
  const check = await checkBeforeStart(await deps.hostFor(run.repo), run, deps.orgPolicies);
  if (!check.allowed) throw new NoLongerAllowedError(check.reason);
  sink.line(`task-mgmt: ${check.note}`);
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
  state: FinalState,
  patch: RunPatch,
  now: () => Date,
  facts: RunFacts,
): Promise<void> {
  // The record is written first, stamped with the time the end is recorded at, so that the move
  // that ends the run carries its CID.
  const at = now();
  const provenanceCid = await provenanceOf(deps, log, { ...run, ...patch, state, finishedAt: at }, facts);
  const finished = await deps.store.transition(run.id, finishMove(state), at, { ...patch, ...(provenanceCid ? { provenanceCid } : {}) }, { heldBy: deps.workerId });
  if (!finished) {
    log.info('run was ended elsewhere before the worker finished');
    await recordEndedElsewhere(deps, log, run.id, facts, now);
    return;
  }
  log.info({ state, outputCid: finished.outputCid, exitCode: finished.exitCode }, 'run finished');
  deps.metrics?.runFinished(finished);
  deps.onRunFinished?.(finished);
  await report(deps, log, finished, finishedReport(finished, deps.gatewayUrl));
}

/** Longest the provenance record may take to write (a Kubo that hangs must not hold the run's end). */
const PROVENANCE_TIMEOUT_MS = 60_000;

/**
 * Writes the provenance record of a run as it ends (README "Provenance"), beside its outputs and
 * pinned as long. A failure is logged, never the run's: the run then ends without a record.
 */
async function provenanceOf(deps: WorkerDeps, log: Logger, ended: Run, facts: RunFacts): Promise<string | null> {
  const now = deps.now ?? (() => new Date());
  const pinnedUntil = facts.pinnedUntil ?? new Date(now().getTime() + effectivePinTtl(ended.spec.pinTtlMs, deps.pinTtl ?? defaultPinTtl));
  try {
    return await writeProvenance({ store: deps.store, now }, facts.ipfs ?? deps.privateIpfs ?? deps.ipfs, {
      run: ended,
      image: facts.image ?? null,
      pinnedUntil,
      signal: AbortSignal.timeout(PROVENANCE_TIMEOUT_MS),
    });
  } catch (error) {
    log.error({ err: error }, 'could not write the provenance record; the run ends without one');
    return null;
  }
}

/**
 * A run cancelled while it ran was ended by whoever cancelled it; once its task has stopped, the
 * worker still writes its record, of the run as the store has it, and shows it on the check run.
 */
async function recordEndedElsewhere(deps: WorkerDeps, log: Logger, runId: string, facts: RunFacts, now: () => Date): Promise<void> {
  const ended = await deps.store.getRun(runId);
  if (ended?.state !== 'cancelled' || ended.startedAt === null || ended.provenanceCid !== null) return;
  const provenanceCid = await provenanceOf(deps, log, ended, facts);
  if (!provenanceCid) return;
  const updated = await deps.store.updateRun(runId, { provenanceCid }, now());
  await report(deps, log, updated, finishedReport(updated, deps.gatewayUrl));
}

/**
 * Reporting must not fail a run. GitHub's server errors and rate limits are retried by the
 * Octokit client itself (github-octokit.ts); what fails after that is logged.
 */
async function report(deps: WorkerDeps, log: Logger, run: Run, body: CheckReport): Promise<void> {
  try {
    await deps.checks.update(run, body);
  } catch (error) {
    log.error({ err: error, status: body.status }, 'could not update the check run');
  }
}
