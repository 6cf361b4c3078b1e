/**
 * Asking for a run, whatever the door (comment, re-run button, retry): gather the facts from
 * GitHub, decide with the policy, then either record and queue the runs, or explain what is
 * missing. Nothing is queued for a refused request, and every decision is audited.
 */
import { authorize, type Decision, type PullRequestFacts } from '../policy/authorize.js';
import { latestApprovals } from '../policy/review-gate.js';
import { findTasks, type ContainerTask } from '../manifest/find-task.js';
import { changedTaskFiles, dockerfileSources, manifestDigest } from '../manifest/task-files.js';
import type { CollaboratorPermission } from '../../ports/repo-host.js';
import { approvalNeededReport, queuedReport } from './check-text.js';
import { fullName, type CommandDeps } from './command-deps.js';
import type { RepoRef, Run, Trigger } from './run.js';

export interface RunRequest {
  repo: RepoRef;
  /** Pull request or issue the request belongs to. */
  number: number;
  isPullRequest: boolean;
  actor: string;
  /** null: every task. */
  task: string | null;
  params: Record<string, string>;
  trigger: Trigger;
  commentId: number | null;
  /** The SHA the requester saw (a re-run button, /retry): refused if the head moved since. */
  expectedSha?: string;
}

export type RequestOutcome =
  | { kind: 'queued'; runs: Run[] }
  | { kind: 'refused'; reason: string }
  | { kind: 'waiting'; reason: string; sha: string };

const rateLimitedActions = ['run', 'retry', 'rerun', 'cancel'];

export async function requestRun(deps: CommandDeps, request: RunRequest): Promise<RequestOutcome> {
  const limited = await rateLimit(deps, request.actor, request.trigger === 'rerun' ? 'rerun' : 'run');
  if (limited) return refuse(deps, request, limited);

  const permission = await deps.host.getPermission(request.actor);
  const early = authorize({ actor: request.actor, permission });
  if (!early.allowed) return refuse(deps, request, early.reason);

  const target = request.isPullRequest ? await pullRequestHead(deps, request.number) : await defaultBranchHead(deps);
  if ('refused' in target) return refuse(deps, request, target.refused);
  const sha = target.sha;
  if (request.expectedSha && request.expectedSha !== sha) {
    return refuse(
      deps,
      request,
      `the head is now \`${sha.slice(0, 12)}\`, not \`${request.expectedSha.slice(0, 12)}\`; comment \`/run\` to run the new head.`,
    );
  }

  const lookup = findTasks(await deps.host.listRoot(sha), sha);
  if (!lookup.ok) return refuse(deps, request, lookup.reason);
  const tasks = request.task === null ? lookup.tasks : lookup.tasks.filter((task) => task.name === request.task);
  if (tasks.length === 0) {
    const known = lookup.tasks.map((task) => `\`${task.name}\``).join(', ');
    return refuse(deps, request, `there is no task \`${request.task}\` at \`${sha.slice(0, 12)}\`; the tasks are ${known}.`);
  }
  if (Object.keys(request.params).length > 0) {
    return refuse(deps, request, `the task \`${tasks[0]!.name}\` takes no parameters (it comes from a \`Dockerfile\`).`);
  }

  const pullRequest =
    target.author !== null
      ? await pullRequestFacts(deps, request.number, sha, target.author, tasks)
      : undefined;
  const decision = authorize({ actor: request.actor, permission, ...(pullRequest ? { pullRequest } : {}) });
  if (!decision.allowed && decision.kind === 'role') return refuse(deps, request, decision.reason);
  if (!decision.allowed) return waitForApproval(deps, request, tasks, decision);
  return queueRuns(deps, request, tasks, sha, decision);
}

async function queueRuns(
  deps: CommandDeps,
  request: RunRequest,
  tasks: ContainerTask[],
  sha: string,
  decision: Extract<Decision, { allowed: true }>,
): Promise<RequestOutcome> {
  const runs: Run[] = [];
  for (const task of tasks) {
    const draft = {
      id: deps.newId(),
      repo: request.repo,
      number: request.number,
      isPullRequest: request.isPullRequest,
      sha,
      task: task.name,
      taskType: task.type,
      dockerfile: task.dockerfile,
      params: request.params,
      requestedBy: request.actor,
      trigger: request.trigger,
      commentId: request.commentId,
      approvals: decision.approvals,
      manifestDigest: manifestDigest(task.definitionFiles),
    };
    // The check run comes first: a worker may take the run the moment it is recorded.
    const checkRunId = await deps.checks.create(draft, queuedReport(draft));
    const run = await deps.store.createRun({ ...draft, checkRunId }, deps.now());
    await audit(deps, request, true, `${decision.reason}; pinned ${sha}`, run.id);
    await deps.queue.enqueue({ runId: run.id });
    runs.push(run);
  }
  // The check run is the main acknowledgement; the reaction tells the commenter it was heard.
  if (request.commentId !== null) await react(deps, request.commentId, 'rocket');
  return { kind: 'queued', runs };
}

async function waitForApproval(
  deps: CommandDeps,
  request: RunRequest,
  tasks: ContainerTask[],
  decision: Extract<Decision, { kind: 'approval' }>,
): Promise<RequestOutcome> {
  await audit(deps, request, false, decision.reason, null);
  for (const task of tasks) {
    const checkRunId = await deps.checks.create({ repo: request.repo, sha: decision.headSha, task: task.name }, approvalNeededReport(decision.reason, decision.headSha));
    await deps.store.recordApprovalWait({
      repo: fullName(request.repo),
      installationId: request.repo.installationId,
      number: request.number,
      sha: decision.headSha,
      task: task.name,
      checkRunId,
      requestedBy: request.actor,
      createdAt: deps.now(),
    });
  }
  await deps.host.reply(request.number, `@${request.actor} nothing was run yet: ${decision.reason}`);
  if (request.commentId !== null) await react(deps, request.commentId, 'eyes');
  return { kind: 'waiting', reason: decision.reason, sha: decision.headSha };
}

async function pullRequestFacts(
  deps: CommandDeps,
  number: number,
  headSha: string,
  author: string,
  tasks: ContainerTask[],
): Promise<PullRequestFacts> {
  const [authorPermission, changed, reviews] = await Promise.all([
    deps.host.getPermission(author),
    deps.host.listChangedFiles(number),
    deps.host.listReviews(number),
  ]);
  const definitionFiles = tasks.flatMap((task) => task.definitionFiles.map((file) => file.path));
  const sources: string[] = [];
  for (const task of tasks) {
    const text = await deps.host.readFile(task.dockerfile, headSha);
    if (text !== null) sources.push(...dockerfileSources(text));
  }
  const reviewerPermissions = new Map<string, CollaboratorPermission>();
  for (const review of latestApprovals(reviews)) {
    if (!reviewerPermissions.has(review.reviewer)) reviewerPermissions.set(review.reviewer, await deps.host.getPermission(review.reviewer));
  }
  return {
    number,
    headSha,
    author,
    authorPermission,
    changedTaskFiles: changedTaskFiles(changed, definitionFiles, sources),
    reviews,
    reviewerPermissions,
  };
}

async function pullRequestHead(deps: CommandDeps, number: number): Promise<{ sha: string; author: string } | { refused: string }> {
  // The issue_comment payload carries no head SHA: the API's answer is the commit we pin.
  const pull = await deps.host.getPullRequest(number);
  if (pull.state !== 'open') return { refused: `pull request #${number} is ${pull.state}; only open pull requests run.` };
  return { sha: pull.headSha, author: pull.author };
}

async function defaultBranchHead(deps: CommandDeps): Promise<{ sha: string; author: null }> {
  const head = await deps.host.getDefaultBranchHead();
  return { sha: head.sha, author: null };
}

async function rateLimit(deps: CommandDeps, actor: string, action: string): Promise<string | null> {
  const limit = deps.limits.commandsPerMinute;
  const recent = await deps.store.countAudit({ actor, actions: rateLimitedActions, since: new Date(deps.now().getTime() - 60_000) });
  if (recent < limit) return null;
  return `@${actor} gave ${recent} commands in the last minute, and the limit is ${limit}; wait a minute before the next \`/${action === 'rerun' ? 'run' : action}\`.`;
}

export async function refuse(deps: CommandDeps, request: Pick<RunRequest, 'repo' | 'number' | 'actor' | 'trigger' | 'commentId'>, reason: string, action?: string): Promise<{ kind: 'refused'; reason: string }> {
  await audit(deps, request, false, reason, null, action);
  await deps.host.reply(request.number, `@${request.actor} nothing was run: ${reason}`);
  if (request.commentId !== null) await react(deps, request.commentId, 'confused');
  return { kind: 'refused', reason };
}

export async function audit(
  deps: CommandDeps,
  request: Pick<RunRequest, 'repo' | 'number' | 'actor' | 'trigger'>,
  allowed: boolean,
  reason: string,
  runId: string | null,
  action?: string,
): Promise<void> {
  await deps.store.audit({
    at: deps.now(),
    repo: fullName(request.repo),
    number: request.number,
    actor: request.actor,
    action: action ?? (request.trigger === 'rerun' ? 'rerun' : 'run'),
    allowed,
    reason,
    runId,
  });
}

export async function react(deps: CommandDeps, commentId: number, content: '+1' | 'rocket' | 'eyes' | 'confused'): Promise<void> {
  await deps.host.react(commentId, content).catch((error: unknown) => deps.log.warn({ err: error }, 'could not react to the comment'));
}
