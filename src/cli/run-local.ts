/**
 * `task-mgmt run [dir] [task] [key=value…]`: runs a folder's tasks exactly as a worker would —
 * same manifest code, same sandbox, same IPFS import — without GitHub or a queue server, and
 * prints the CIDs.
 *
 * Local runs keep to a data folder of their own, `DATA_DIR/local` (run store, IPFS blocks, logs),
 * and never use DATABASE_URL, QUEUE_URL or EVENTS_URL: a server on the same DATA_DIR never sees
 * them, so it can never pick up a local run and report it to GitHub.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import type { Config } from '../config.js';
import { createLogger, defaultLimits, openServices, outputLimits, pinTtl, taskSettings, workerId } from '../app.js';
import { ConsoleCheckReporter, terminalOutput } from '../adapters/local/console-check-reporter.js';
import { LocalRepoHost } from '../adapters/local/local-repo-host.js';
import { LocalSourceFetcher } from '../adapters/local/local-source-fetcher.js';
import { DockerExecutor } from '../adapters/executor/docker-executor.js';
import type { Run } from '../core/runs/run.js';
import { errorMessage } from '../ports/errors.js';
import type { RunLeases, RunLogs, RunRecords } from '../ports/run-store.js';
import { pruneOldLogFiles } from '../worker/old-log-files.js';
import { createRunHandler } from '../worker/run-worker.js';
import { builtInTaskTypes } from '../../tasks/index.js';
import { localRunService, parseFolderRequest, refusalLine, requestLocal } from './local-request.js';

export interface RunLocalIo {
  /** What the run shows as it goes, and its results. */
  out: (line: string) => void;
  /** Why it could not run. */
  err: (line: string) => void;
  /** On a terminal: the line redrawn in place below the others (progress bars); absent elsewhere. */
  status?: (text: string | null) => void;
}

function consoleIo(): RunLocalIo {
  if (!process.stdout.isTTY) return { out: (line) => console.log(line), err: (line) => console.error(line) };
  const terminal = terminalOutput((text) => process.stdout.write(text), () => process.stdout.columns);
  return { out: terminal.line, status: terminal.status, err: (line) => terminal.line(line) };
}

/** Where local runs keep their records, blocks and logs, apart from the app's. */
export function localDataDir(config: Pick<Config, 'DATA_DIR'>): string {
  return join(config.DATA_DIR, 'local');
}

export async function runLocal(config: Config, argv: string[], io: RunLocalIo = consoleIo()): Promise<number> {
  const request = parseFolderRequest(argv);
  if ('error' in request) {
    io.err(`task-mgmt run: ${request.error}`);
    return 2;
  }

  const local: Config = { ...config, DATA_DIR: localDataDir(config), DATABASE_URL: undefined, QUEUE_URL: undefined, EVENTS_URL: undefined };
  // Everything that matters is printed as it happens; LOG_LEVEL=info shows the worker's own log too.
  const log = createLogger({ LOG_LEVEL: config.LOG_LEVEL ?? 'silent' });
  const services = await openServices(local, log);
  const host = new LocalRepoHost(request.dir);
  const checks = new ConsoleCheckReporter(io.status ? { line: io.out, status: io.status } : io.out);
  const worker = workerId();
  try {
    // The person at the keyboard owns the folder: the local host gives them the admin role.
    const runs = localRunService({ config: local, store: services.store, host, checks });
    const outcome = await requestLocal(runs, request, process.env.USER ?? 'local');
    if (outcome.kind !== 'queued') {
      io.err(`task-mgmt run: ${refusalLine(outcome, request)}`);
      return 1;
    }

    const docker = new Dockerode();
    if (outcome.runs.some((run) => builtInTaskTypes.get(run.taskType)?.startsContainer)) {
      const unreachable = await dockerUnreachable(docker);
      if (unreachable) {
        for (const run of outcome.runs) await endUnfinished(services.store, run.id, worker, unreachable);
        io.err(`task-mgmt run: ${unreachable}`);
        return 1;
      }
    }

    const logsDir = join(local.DATA_DIR, 'logs');
    await mkdir(logsDir, { recursive: true });
    // The logs of earlier runs are kept for RETENTION, as the app keeps its own.
    await pruneOldLogFiles(logsDir, new Date(Date.now() - config.RETENTION), Number.MAX_SAFE_INTEGER).catch((error: unknown) => log.warn({ err: error }, 'could not prune old local logs'));
    const handler = createRunHandler({
      store: echoingLogs(services.store, io.out, logsDir),
      hostFor: async () => host,
      // Runs of this folder in another terminal, or left `running` by a killed run, do not hold this one back.
      maxRunningPerRepo: Number.MAX_SAFE_INTEGER,
      checks,
      source: new LocalSourceFetcher(request.dir, local.DATA_DIR),
      executor: new DockerExecutor({ docker, logger: log.child({ name: 'executor' }), buildTimeoutMs: config.BUILD_TIMEOUT, allowedRegistries: config.ALLOWED_REGISTRIES }),
      ipfs: services.ipfs,
      taskTypes: builtInTaskTypes,
      settings: taskSettings(config),
      log,
      dataDir: local.DATA_DIR,
      gatewayUrl: config.IPFS_GATEWAY_URL,
      limits: defaultLimits(config),
      outputLimits: outputLimits(config),
      logMaxBytes: config.LOG_MAX_BYTES,
      workerId: worker,
      progressIntervalMs: 2000,
      pinTtl: pinTtl(config),
    });
    const controller = new AbortController();
    const stop = () => controller.abort(new Error('interrupted'));
    process.once('SIGINT', stop);
    let failed = false;
    try {
      for (const queued of outcome.runs) {
        await appendFile(logFile(logsDir, queued), '');
        io.out(`${queued.task}: log in ${logFile(logsDir, queued)}`);
        try {
          await handler({ runId: queued.id }, { signal: controller.signal });
        } catch (error) {
          // A worker would hand the run back to the queue (the network hiccuped, say); here there is
          // no queue to try again later, so the run ends, and the tasks that need it with it.
          await endUnfinished(services.store, queued.id, worker, `${errorMessage(error)} (a local run is not tried again)`);
        }
        io.status?.(null);
        const run = (await services.store.getRun(queued.id))!;
        for (const line of resultLines(run)) io.out(line);
        if (run.state !== 'succeeded') failed = true;
      }
    } finally {
      process.off('SIGINT', stop);
    }
    return failed ? 1 : 0;
  } finally {
    await services.close();
  }
}

/**
 * What a finished task gave. The CIDs of a task that did not succeed are shown only when it left
 * files, and said to be what it left: an empty folder's CID is no result. The provenance record's
 * CID comes last, for any run that wrote one.
 */
export function resultLines(run: Run): string[] {
  const succeeded = run.state === 'succeeded';
  const left = run.outputCid !== null && run.outputFiles.length > 0;
  const outputs = run.outputCid && succeeded ? ` ipfs://${run.outputCid}` : left ? ` (it left ipfs://${run.outputCid})` : '';
  const lines = [`${run.task}: ${run.state.replace('_', ' ')}${run.error ? ` — ${run.error}` : ''}${outputs}`];
  if (succeeded || left) for (const file of run.outputFiles) lines.push(`  ${file.cid}  ${file.name}${file.kind === 'directory' ? '/' : ''}`);
  // The record of how the task ran, failed ones included; a run that never started has none.
  if (run.provenanceCid) lines.push(`  provenance: ipfs://${run.provenanceCid}  (task-mgmt verify ${run.provenanceCid})`);
  return lines;
}

/** Where a local run's log is written as plain text, beside its copy in the run store. */
function logFile(logsDir: string, run: Pick<Run, 'id' | 'task'>): string {
  return join(logsDir, `${run.task.replace(/[^\w.-]/g, '_')}-${run.id}.log`);
}

/**
 * The run store, with each chunk of a run's log also shown as it is kept: the task's own output,
 * one `[task] line` per line it wrote (a line cut between chunks is shown once it ends), and
 * written to the run's log file, whose path is printed when the run starts.
 */
function echoingLogs<S extends RunRecords & RunLogs>(store: S, out: (line: string) => void, logsDir: string): S {
  const pending = new Map<string, string>();
  const names = new Map<string, string>();
  const appendLog: RunLogs['appendLog'] = async (runId, chunk, maxBytes) => {
    const info = await store.appendLog(runId, chunk, maxBytes);
    let task = names.get(runId);
    if (task === undefined) {
      task = (await store.getRun(runId))?.task ?? runId;
      names.set(runId, task);
    }
    const text = (pending.get(runId) ?? '') + Buffer.from(chunk.bytes).toString('utf8');
    const lines = text.split('\n');
    pending.set(runId, lines.pop()!);
    for (const line of lines) out(`[${task}] ${line.replace(/\r$/, '')}`);
    await appendFile(logFile(logsDir, { id: runId, task }), chunk.bytes);
    return info;
  };
  return new Proxy(store, {
    get(target, key) {
      if (key === 'appendLog') return appendLog;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Why the Docker engine cannot be used, naming where it was looked for; null when it answers. */
async function dockerUnreachable(docker: Dockerode): Promise<string | null> {
  try {
    // dockerode hands `abortSignal` to its modem (lib/docker.js), though its types leave it out.
    const ping = docker.ping.bind(docker) as unknown as (options: { abortSignal: AbortSignal }) => Promise<unknown>;
    await ping({ abortSignal: AbortSignal.timeout(10_000) });
    return null;
  } catch (error) {
    // docker-modem keeps the socket path as a string, or as a function that finds it.
    const modem = docker.modem as { socketPath?: string | (() => Promise<string>); host?: string; port?: number | string };
    const socket = typeof modem.socketPath === 'function' ? await modem.socketPath().catch(() => undefined) : modem.socketPath;
    const where = socket ? `unix://${socket}` : `${modem.host}:${modem.port}`;
    const reason = (error as Error).name === 'TimeoutError' ? 'no answer in 10 s' : errorMessage(error);
    return `cannot reach the Docker engine at ${where} (${reason}): start Docker, or set DOCKER_HOST to an engine that answers`;
  }
}

/** Ends a run this process could not finish as failed, whether it is still queued or running. */
async function endUnfinished(store: RunRecords & RunLeases, runId: string, worker: string, error: string): Promise<void> {
  const now = () => new Date();
  const run = await store.getRun(runId);
  if (run?.state === 'queued') await store.transition(runId, 'claim', now(), { workerId: worker, leaseUntil: new Date(now().getTime() + 60_000) });
  await store.transition(runId, 'fail', now(), { error }, { heldBy: worker });
}
