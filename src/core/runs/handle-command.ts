/**
 * The use case behind a comment command: authorize, pin the commit, record, report, enqueue.
 * Everything it needs from the outside arrives as ports, so it reads as the steps it takes.
 */
import type { Logger } from 'pino';
import type { Command } from '../commands/parse-comment.js';
import { authorize } from '../policy/authorize.js';
import { findTasks } from '../manifest/find-task.js';
import type { CheckReporter } from '../../ports/check-reporter.js';
import type { RepoHost } from '../../ports/repo-host.js';
import type { RunQueue } from '../../ports/run-queue.js';
import type { RunStore } from '../../ports/run-store.js';
import { queuedReport } from './check-text.js';
import type { IdGenerator } from './ids.js';
import type { RepoRef, Run } from './run.js';

export interface CommandDeps {
  store: RunStore;
  queue: RunQueue;
  checks: CheckReporter;
  host: RepoHost;
  log: Logger;
  newId: IdGenerator;
  now: () => Date;
}

export interface CommentCommand {
  repo: RepoRef;
  number: number;
  isPullRequest: boolean;
  commentId: number;
  actor: string;
  command: Command;
}

export type CommandOutcome =
  | { kind: 'queued'; runs: Run[] }
  | { kind: 'refused'; reason: string }
  | { kind: 'replied'; message: string };

export async function handleCommand(deps: CommandDeps, input: CommentCommand): Promise<CommandOutcome> {
  const { command } = input;
  switch (command.kind) {
    case 'run':
      return requestRun(deps, input, command);
    case 'help':
      return reply(deps, input, helpText());
    case 'cancel':
    case 'retry':
      return reply(deps, input, `\`/${command.kind}\` is not available in this version of task-mgmt yet. ${helpHint}`);
  }
}

const helpHint = 'Comment `/help` for what works.';

async function requestRun(
  deps: CommandDeps,
  input: CommentCommand,
  command: Extract<Command, { kind: 'run' }>,
): Promise<CommandOutcome> {
  const permission = await deps.host.getPermission(input.actor);
  const decision = authorize({ actor: input.actor, permission });
  if (!decision.allowed) return refuse(deps, input, decision.reason);

  const target = input.isPullRequest ? await pullRequestHead(deps, input.number) : await defaultBranchHead(deps);
  if ('refused' in target) return refuse(deps, input, target.refused);

  const lookup = findTasks(await deps.host.listRoot(target.sha), target.sha);
  if (!lookup.ok) return refuse(deps, input, lookup.reason);
  const wanted = command.task ?? null;
  const tasks = wanted === null ? lookup.tasks : lookup.tasks.filter((task) => task.name === wanted);
  if (tasks.length === 0) {
    const known = lookup.tasks.map((task) => `\`${task.name}\``).join(', ');
    return refuse(deps, input, `there is no task \`${wanted}\` at \`${target.sha.slice(0, 12)}\`; the tasks are ${known}.`);
  }
  if (Object.keys(command.params).length > 0) {
    return refuse(deps, input, `the task \`${tasks[0]!.name}\` takes no parameters (it comes from a \`Dockerfile\`).`);
  }

  const runs: Run[] = [];
  for (const task of tasks) {
    let run = await deps.store.createRun(
      {
        id: deps.newId(),
        repo: input.repo,
        number: input.number,
        isPullRequest: input.isPullRequest,
        sha: target.sha,
        task: task.name,
        taskType: task.type,
        dockerfile: task.dockerfile,
        params: command.params,
        requestedBy: input.actor,
        trigger: 'comment',
        commentId: input.commentId,
      },
      deps.now(),
    );
    await deps.store.audit({
      at: deps.now(),
      repo: fullName(input.repo),
      number: input.number,
      actor: input.actor,
      action: 'run',
      allowed: true,
      reason: `${decision.reason}; pinned ${target.sha}`,
      runId: run.id,
    });
    const checkRunId = await deps.checks.create(run, queuedReport(run));
    run = await deps.store.updateRun(run.id, { checkRunId }, deps.now());
    await deps.queue.enqueue({ runId: run.id });
    runs.push(run);
  }
  // The check run is the main acknowledgement; the reaction tells the commenter it was heard.
  await deps.host.react(input.commentId, 'rocket').catch((error: unknown) => deps.log.warn({ err: error }, 'could not react to the comment'));
  return { kind: 'queued', runs };
}

async function pullRequestHead(deps: CommandDeps, number: number): Promise<{ sha: string } | { refused: string }> {
  // The issue_comment payload carries no head SHA: the API's answer is the commit we pin.
  const pull = await deps.host.getPullRequest(number);
  if (pull.state !== 'open') return { refused: `pull request #${number} is ${pull.state}; only open pull requests run.` };
  return { sha: pull.headSha };
}

async function defaultBranchHead(deps: CommandDeps): Promise<{ sha: string }> {
  const head = await deps.host.getDefaultBranchHead();
  return { sha: head.sha };
}

async function refuse(deps: CommandDeps, input: CommentCommand, reason: string): Promise<CommandOutcome> {
  await deps.store.audit({
    at: deps.now(),
    repo: fullName(input.repo),
    number: input.number,
    actor: input.actor,
    action: input.command.kind,
    allowed: false,
    reason,
    runId: null,
  });
  await deps.host.reply(input.number, `@${input.actor} nothing was run: ${reason}`);
  await deps.host.react(input.commentId, 'confused').catch((error: unknown) => deps.log.warn({ err: error }, 'could not react to the comment'));
  return { kind: 'refused', reason };
}

async function reply(deps: CommandDeps, input: CommentCommand, message: string): Promise<CommandOutcome> {
  await deps.host.reply(input.number, message);
  return { kind: 'replied', message };
}

function fullName(repo: RepoRef): string {
  return `${repo.owner}/${repo.name}`;
}

function helpText(): string {
  return [
    '**task-mgmt commands** (first line of a comment):',
    '',
    '- `/run` — build the `Dockerfile` at the root of this pull request\'s head commit (or the default branch, on an issue), run it in a sandbox, and publish what it writes to `/out` on IPFS. Needs the write role or higher.',
    '- `/help` — this list.',
    '',
    'Results appear as a check run named `task-mgmt / default` on the commit that ran.',
  ].join('\n');
}
