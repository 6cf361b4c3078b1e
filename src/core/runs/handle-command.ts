/**
 * The use cases behind comments and buttons: `/run`, `/cancel`, `/retry`, `/help`, the check
 * run's Re-run and Cancel buttons, and a push to a pull request. Each reads as its steps.
 */
import type { Command } from '../comment-commands/parse-comment.js';
import { authorize } from '../policy/authorize.js';
import { readManifest } from '../manifest/read-manifest.js';
import type { ResolvedTask } from '../manifest/load-manifest.js';
import { staleApprovalReport } from './check-text.js';
import { cancelRun } from './cancel-run.js';
import { fullName, type CommandDeps } from './command-deps.js';
import { audit, react, refuse, requestRun, type RequestOutcome } from './request-run.js';
import type { RepoRef, Run } from './run.js';

export type { CommandDeps } from './command-deps.js';

export interface CommentCommand {
  repo: RepoRef;
  number: number;
  isPullRequest: boolean;
  commentId: number;
  actor: string;
  command: Command;
}

export type CommandOutcome = RequestOutcome | { kind: 'replied'; message: string } | { kind: 'cancelled'; runs: string[] };

export async function handleCommand(deps: CommandDeps, input: CommentCommand): Promise<CommandOutcome> {
  const { command } = input;
  const base = { repo: input.repo, number: input.number, isPullRequest: input.isPullRequest, actor: input.actor, commentId: input.commentId };
  switch (command.kind) {
    case 'run':
      return requestRun(deps, { ...base, task: command.task, params: command.params, trigger: 'comment' });
    case 'cancel':
      return cancelCommand(deps, input, command.runId);
    case 'retry':
      return retryCommand(deps, input);
    case 'help':
      return helpCommand(deps, input);
  }
}

/** `/cancel [run-id]`: the runs started on this pull request or issue, or one run. */
async function cancelCommand(deps: CommandDeps, input: CommentCommand, runId: string | null): Promise<CommandOutcome> {
  const request = { ...input, trigger: 'comment' as const };
  const decision = authorize({ actor: input.actor, permission: await deps.host.getPermission(input.actor) });
  if (!decision.allowed) return refuse(deps, request, decision.reason.replace('running tasks', 'cancelling runs'), 'cancel');

  let runs: Run[];
  if (runId !== null) {
    const run = await deps.store.getRun(runId);
    if (!run || fullName(run.repo) !== fullName(input.repo)) return refuse(deps, request, `there is no run \`${runId}\` in this repository.`, 'cancel');
    if (run.state !== 'queued' && run.state !== 'running') return refuse(deps, request, `run \`${runId}\` has already ended (${run.state}).`, 'cancel');
    runs = [run];
  } else {
    runs = await deps.store.listRuns({ repo: fullName(input.repo), number: input.number, states: ['queued', 'running'] });
    if (runs.length === 0) return refuse(deps, request, `no run of #${input.number} is queued or running.`, 'cancel');
  }
  const cancelled: string[] = [];
  for (const run of runs) {
    if (await cancelRun(deps, run, `cancelled by @${input.actor}`)) cancelled.push(run.id);
  }
  await audit(deps, request, true, `${decision.reason}; cancelled ${cancelled.join(', ') || 'nothing (already ended)'}`, cancelled[0] ?? null, 'cancel');
  await react(deps, input.commentId, '+1');
  return { kind: 'cancelled', runs: cancelled };
}

/** `/retry`: run again, at the same SHA, each task whose latest run here did not succeed. */
async function retryCommand(deps: CommandDeps, input: CommentCommand): Promise<CommandOutcome> {
  const request = { ...input, trigger: 'comment' as const };
  const recent = await deps.store.listRuns({ repo: fullName(input.repo), number: input.number, limit: 100 });
  const latestByTask = new Map<string, Run>();
  for (const run of recent) if (!latestByTask.has(run.task)) latestByTask.set(run.task, run);
  const failed = [...latestByTask.values()].filter((run) => run.state === 'failed' || run.state === 'timed_out' || run.state === 'cancelled');
  if (failed.length === 0) return refuse(deps, request, `no run of #${input.number} failed: there is nothing to retry.`, 'retry');
  const outcomes: RequestOutcome[] = [];
  for (const run of failed) {
    outcomes.push(
      await requestRun(deps, {
        repo: input.repo,
        number: input.number,
        isPullRequest: input.isPullRequest,
        actor: input.actor,
        task: run.task,
        params: run.params,
        trigger: 'comment',
        commentId: input.commentId,
        expectedSha: run.sha,
      }),
    );
  }
  return outcomes.find((outcome) => outcome.kind !== 'queued') ?? { kind: 'queued', runs: outcomes.flatMap((o) => (o.kind === 'queued' ? o.runs : [])) };
}

async function helpCommand(deps: CommandDeps, input: CommentCommand): Promise<CommandOutcome> {
  let tasks = '';
  try {
    const sha = input.isPullRequest ? (await deps.host.getPullRequest(input.number)).headSha : (await deps.host.getDefaultBranchHead()).sha;
    const read = await readManifest(deps.host, sha, deps.taskTypes, deps.defaultImage);
    tasks = read.ok
      ? `Tasks at \`${sha.slice(0, 12)}\` (from \`${read.manifest.source}\`):\n\n${read.manifest.tasks.map(describeTask).join('\n')}`
      : 'errors' in read
        ? `The task definition at \`${sha.slice(0, 12)}\` has errors: ${read.errors.map((e) => `\`${e.file}\` line ${e.line}: ${e.message}`).join('; ')}`
        : `No tasks: ${read.reason}`;
  } catch (error) {
    deps.log.warn({ err: error }, 'could not list the tasks for /help');
    tasks = 'The tasks could not be listed just now.';
  }
  const message = [
    '**task-mgmt commands** (the first line of a comment):',
    '',
    '- `/run [task] [key=value…]` — run the task and what it needs (all tasks when none is named) at this pull request\'s head commit, or at the default branch\'s HEAD on an issue. Needs the write role or higher; a pull request by someone without write access, or one that changes the task, also needs an approving review of its head commit.',
    '- `/cancel [run-id]` — cancel the queued and running runs of this pull request or issue, or one run.',
    '- `/retry` — run again the tasks whose latest run here failed, at the same commit.',
    '- `/help` — this list.',
    '',
    tasks,
    '',
    'Results appear as check runs named `task-mgmt / <task>` on the commit that ran.',
  ].join('\n');
  await deps.host.reply(input.number, message);
  return { kind: 'replied', message };
}

function describeTask(task: ResolvedTask): string {
  const params = Object.entries(task.params).map(([key, spec]) => {
    const rules = [spec.required ? 'required' : null, spec.default !== undefined ? `default \`${spec.default}\`` : null, spec.enum ? `one of ${spec.enum.join(', ')}` : null, spec.pattern ? `matching \`${spec.pattern}\`` : null]
      .filter(Boolean)
      .join(', ');
    return `\`${key}\`${rules ? ` (${rules})` : ''}${spec.description ? ` — ${spec.description}` : ''}`;
  });
  const needs = task.needs.length > 0 ? `; needs ${task.needs.map((n) => `\`${n}\``).join(', ')}` : '';
  return `- \`${task.name}\` — ${task.type}${task.description ? `: ${task.description}` : ''}${needs}; ${params.length > 0 ? `parameters ${params.join(', ')}` : 'no parameters'}`;
}

/** The check run's Re-run button: the clicking user asks again, for the same task and SHA. */
export async function rerunFromCheck(deps: CommandDeps, input: { run: Run; actor: string; headSha: string }): Promise<RequestOutcome> {
  const { run } = input;
  if (run.number === null) return { kind: 'refused', reason: 'the run belongs to no pull request or issue' };
  return requestRun(deps, {
    repo: run.repo,
    number: run.number,
    isPullRequest: run.isPullRequest,
    actor: input.actor,
    task: run.task,
    params: run.params,
    trigger: 'rerun',
    commentId: null,
    expectedSha: input.headSha,
  });
}

/** The check run's Cancel button. */
export async function cancelFromCheck(deps: CommandDeps, input: { run: Run; actor: string }): Promise<CommandOutcome> {
  const { run } = input;
  const request = { repo: run.repo, number: run.number ?? 0, actor: input.actor, trigger: 'comment' as const, commentId: null };
  const decision = authorize({ actor: input.actor, permission: await deps.host.getPermission(input.actor) });
  if (!decision.allowed) {
    if (run.number === null) return { kind: 'refused', reason: decision.reason };
    return refuse(deps, request, decision.reason.replace('running tasks', 'cancelling runs'), 'cancel');
  }
  const done = await cancelRun(deps, run, `cancelled by @${input.actor}`);
  await audit(deps, request, true, `${decision.reason}; ${done ? `cancelled ${run.id}` : `${run.id} had already ended`}`, run.id, 'cancel');
  return { kind: 'cancelled', runs: done ? [run.id] : [] };
}

/**
 * A push to a pull request: runs of the old head are cancelled (`cancel_on_push`, on by default),
 * and approval requests for the old head are marked stale.
 */
export async function pushedToPullRequest(
  deps: CommandDeps,
  input: { repo: RepoRef; number: number; headSha: string; cancelOnPush?: boolean },
): Promise<{ cancelled: string[]; stale: number }> {
  const cancelled: string[] = [];
  if (input.cancelOnPush ?? true) {
    const active = await deps.store.listRuns({ repo: fullName(input.repo), number: input.number, states: ['queued', 'running'] });
    for (const run of active.filter((r) => r.sha !== input.headSha)) {
      const reason = `new commits were pushed to #${input.number} (the head is now \`${input.headSha.slice(0, 12)}\`), so the run of \`${run.sha.slice(0, 12)}\` was cancelled`;
      if (await cancelRun(deps, run, reason)) cancelled.push(run.id);
    }
  }
  const waits = await deps.store.takeApprovalWaits(fullName(input.repo), input.number);
  for (const wait of waits.filter((w) => w.sha !== input.headSha)) {
    await deps.checks.update({ repo: input.repo, checkRunId: wait.checkRunId }, staleApprovalReport(wait.sha, input.headSha));
  }
  if (cancelled.length > 0 || waits.length > 0) {
    await deps.store.audit({
      at: deps.now(),
      repo: fullName(input.repo),
      number: input.number,
      actor: 'push',
      action: 'push',
      allowed: true,
      reason: `head is now ${input.headSha}; cancelled ${cancelled.length} run(s), ${waits.length} approval request(s) now stale`,
      runId: null,
    });
  }
  return { cancelled, stale: waits.length };
}
