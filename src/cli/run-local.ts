/**
 * `task-mgmt run [dir] [task] [key=value…]`: runs a folder's tasks exactly as a worker would —
 * same manifest code, same sandbox, same IPFS import — without GitHub or a queue server, and
 * prints the CIDs. Runs are recorded in DATA_DIR's run store like any other.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../config.js';
import { createLogger, defaultLimits, openServices, outputLimits, taskSettings, workerId } from '../app.js';
import { ConsoleCheckReporter } from '../adapters/local/console-check-reporter.js';
import { LocalRepoHost } from '../adapters/local/local-repo-host.js';
import { LocalSourceFetcher } from '../adapters/local/local-source-fetcher.js';
import { DockerExecutor } from '../adapters/executor/docker-executor.js';
import { parseComment } from '../core/comment-commands/parse-comment.js';
import { newRunId } from '../core/runs/ids.js';
import { RunService } from '../core/run-service/run-service.js';
import { createRunHandler } from '../worker/run-worker.js';
import { builtInTaskTypes } from '../../tasks/index.js';

export async function runLocal(config: Config, argv: string[], out: (line: string) => void = console.log): Promise<number> {
  const [first, ...rest] = argv;
  // The folder is optional: a first argument that is an existing path is the folder.
  const dir = first !== undefined && !first.includes('=') && existsSync(first) ? resolve(first) : resolve('.');
  const words = first !== undefined && resolve(first) === dir ? rest : argv;
  const command = parseComment(`/run ${words.map((w) => (/\s/.test(w) ? `"${w.replace(/"/g, '\\"')}"` : w)).join(' ')}`);
  if (command.type !== 'command' || command.command.kind !== 'run') {
    out(`task-mgmt run: ${command.type === 'reply' ? command.message : 'usage: task-mgmt run [dir] [task] [key=value…]'}`);
    return 2;
  }

  const log = createLogger({ LOG_LEVEL: config.LOG_LEVEL ?? 'warn' });
  const services = await openServices(config, log);
  const host = new LocalRepoHost(dir);
  const checks = new ConsoleCheckReporter(out);
  const repo = { owner: 'local', name: dir.split('/').pop() || 'folder', installationId: 1 };
  try {
    const runs = new RunService({
      store: services.store,
      // Nothing is queued: this process runs each task itself, in order.
      queue: { enqueue: async () => undefined, consume: async () => undefined, cancel: async () => undefined, close: async () => undefined },
      checks,
      hostFor: async () => host,
      newId: newRunId,
      now: () => new Date(),
      gatewayUrl: config.IPFS_GATEWAY_URL,
      commandsPerMinute: Number.MAX_SAFE_INTEGER,
      taskTypes: builtInTaskTypes,
      defaultImage: config.PROCFILE_IMAGE,
    });
    // The person at the keyboard owns the folder: the local host gives them the admin role.
    const outcome = await runs.request({
      requester: { kind: 'user', login: process.env.USER ?? 'local' },
      repo,
      target: { kind: 'default_branch' },
      task: command.command.task,
      params: command.command.params,
      trigger: 'api',
    });
    if (outcome.kind !== 'queued') out(`task-mgmt run: ${outcome.reason}`);
    if (outcome.kind !== 'queued') return 1;

    const handler = createRunHandler({
      store: services.store,
      hostFor: async () => host,
      maxRunningPerRepo: 1,
      checks,
      source: new LocalSourceFetcher(dir, config.DATA_DIR),
      executor: new DockerExecutor({ logger: log.child({ name: 'executor' }), buildTimeoutMs: config.BUILD_TIMEOUT, allowedRegistries: config.ALLOWED_REGISTRIES }),
      ipfs: services.ipfs,
      taskTypes: builtInTaskTypes,
      settings: taskSettings(config),
      log,
      dataDir: config.DATA_DIR,
      gatewayUrl: config.IPFS_GATEWAY_URL,
      limits: defaultLimits(config),
      outputLimits: outputLimits(config),
      workerId: workerId(),
      progressIntervalMs: 2000,
    });
    const controller = new AbortController();
    const stop = () => controller.abort(new Error('interrupted'));
    process.once('SIGINT', stop);
    let failed = false;
    for (const queued of outcome.runs) {
      await handler({ runId: queued.id }, { signal: controller.signal });
      const run = (await services.store.getRun(queued.id))!;
      out(`${run.task}: ${run.state}${run.outputCid ? ` ipfs://${run.outputCid}` : ''}${run.error ? ` — ${run.error}` : ''}`);
      for (const file of run.outputFiles) out(`  ${file.cid}  ${file.name}${file.kind === 'directory' ? '/' : ''}`);
      if (run.state !== 'succeeded') failed = true;
    }
    process.off('SIGINT', stop);
    return failed ? 1 : 0;
  } finally {
    await services.close();
  }
}
