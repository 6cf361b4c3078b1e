/**
 * What `task-mgmt run` and `task-mgmt validate` share: reading `[dir] [task] [key=value…]` from
 * the command line, and the run service a local folder is judged by — the same one `/run` goes
 * through, so `validate` refuses exactly what `run` would.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseComment } from '../core/comment-commands/parse-comment.js';
import { newRunId } from '../core/runs/ids.js';
import { RunService } from '../core/run-service/run-service.js';
import type { RequestOutcome } from '../core/run-service/run-service.js';
import { LocalRepoHost } from '../adapters/local/local-repo-host.js';
import type { CheckReporter } from '../ports/check-reporter.js';
import type { RunQueue } from '../ports/run-queue.js';
import type { RunStore } from '../ports/run-store.js';
import type { Config } from '../config.js';
import { taskCatalog } from '../app.js';

export interface FolderRequest {
  /** The folder, absolute. */
  dir: string;
  /** Whether the folder was named (else it is the current folder). */
  named: boolean;
  /** A first word taken as a task name that is no folder here either: said when no task has that name. */
  bareWord: string | null;
  task: string | null;
  params: Record<string, string>;
}

/** `[dir] [task] [key=value…]`; an error is one line for the user. */
export function parseFolderRequest(argv: readonly string[], cwd = process.cwd()): FolderRequest | { error: string } {
  const [first, ...rest] = argv;
  let dir = cwd;
  let words = [...argv];
  let named = false;
  let bareWord: string | null = null;
  if (first !== undefined && !first.includes('=')) {
    const path = resolve(cwd, first);
    const info = statSync(path, { throwIfNoEntry: false });
    if (info?.isDirectory()) {
      dir = path;
      words = rest;
      named = true;
    } else if (info) {
      return { error: `${first} is a file, not a folder: name the folder that holds task-mgmt.yml, a Dockerfile or a Procfile` };
    } else if (looksLikePath(first)) {
      return { error: `there is no folder ${first}` };
    } else {
      bareWord = first;
    }
  }
  const quoted = words.map((word) => (/\s/.test(word) ? `"${word.replace(/"/g, '\\"')}"` : word));
  const command = parseComment(`/run ${quoted.join(' ')}`);
  if (command.type !== 'command' || command.command.kind !== 'run') {
    return { error: command.type === 'reply' ? plain(command.message) : 'expected [dir] [task] [key=value…]' };
  }
  return { dir, named, bareWord, task: command.command.task, params: command.command.params };
}

/** Task names are letters, digits, `-`, `_` and `.`: anything with a slash, or `.`/`..`/`~` first, is a path. */
function looksLikePath(word: string): boolean {
  return /[/\\]/.test(word) || word.startsWith('.') || word.startsWith('~');
}

/** Replies written for GitHub quote with backticks; a terminal shows them as they are. */
export function plain(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** The reason a local request was refused, with a hint when its first word might have been meant as a folder. */
export function refusalLine(outcome: Exclude<RequestOutcome, { kind: 'queued' }>, request: FolderRequest): string {
  // The run service names the commit; a local folder has none but its path.
  const reason = plain(outcome.reason).replace(/`0{12}`/g, request.dir);
  if (request.bareWord !== null && outcome.kind === 'refused' && (outcome.code === 'not_found' || outcome.code === 'not_runnable')) {
    return `${reason} (and there is no folder ${request.bareWord} here)`;
  }
  return reason;
}

/** Nothing is queued from a local folder: the caller runs what the request recorded, or nothing. */
export const noQueue: RunQueue = {
  enqueue: async () => undefined,
  consume: async () => undefined,
  cancel: async () => undefined,
  close: async () => undefined,
};

/** A check reporter that shows nothing, for judging a request without running it. */
export const silentChecks: CheckReporter = { create: async () => 0, update: async () => undefined };

/** A folder as a repository of `local/<folder name>`, for the run service and the worker. */
export function localRepo(dir: string): { owner: string; name: string; installationId: number } {
  return { owner: 'local', name: dir.split(/[/\\]/).pop() || 'folder', installationId: 1 };
}

/** The run service as `/run` uses it, over a local folder whose reader (the person at the keyboard) is its admin. */
export function localRunService(deps: { config: Config; store: RunStore; host: LocalRepoHost; checks: CheckReporter }): RunService {
  return new RunService({
    store: deps.store,
    queue: noQueue,
    checks: deps.checks,
    hostFor: async () => deps.host,
    newId: newRunId,
    now: () => new Date(),
    gatewayUrl: deps.config.IPFS_GATEWAY_URL,
    commandsPerMinute: Number.MAX_SAFE_INTEGER,
    taskTypes: taskCatalog(deps.config),
    defaultImage: deps.config.PROCFILE_IMAGE,
    pinTtl: { defaultMs: deps.config.PIN_TTL_DEFAULT, maxMs: deps.config.PIN_TTL_MAX },
  });
}

/** Asks the run service to run a folder's tasks, as its local admin. */
export function requestLocal(runs: RunService, request: FolderRequest, login: string): Promise<RequestOutcome> {
  return runs.request({
    requester: { kind: 'user', login },
    repo: localRepo(request.dir),
    target: { kind: 'default_branch' },
    task: request.task,
    params: request.params,
    trigger: 'api',
  });
}
