/** What the command use cases need from the outside, passed as one named object. */
import type { Logger } from 'pino';
import type { CheckReporter } from '../../ports/check-reporter.js';
import type { RepoHost } from '../../ports/repo-host.js';
import type { RunQueue } from '../../ports/run-queue.js';
import type { RunStore } from '../../ports/run-store.js';
import type { IdGenerator } from './ids.js';
import type { TaskTypeCatalog } from '../manifest/load-manifest.js';
import type { RepoRef } from './run.js';

export interface CommandLimits {
  /** Commands (run, retry, re-run, cancel) one person may give per minute in one installation. */
  commandsPerMinute: number;
}

export interface CommandDeps {
  store: RunStore;
  queue: RunQueue;
  checks: CheckReporter;
  host: RepoHost;
  log: Logger;
  newId: IdGenerator;
  now: () => Date;
  gatewayUrl: string;
  limits: CommandLimits;
  /** The task types `uses:` may name. */
  taskTypes: TaskTypeCatalog;
  /** Base image for Procfile tasks that name none. */
  defaultImage: string;
}

export function fullName(repo: RepoRef): string {
  return `${repo.owner}/${repo.name}`;
}
