/**
 * Handles webhook deliveries after GitHub has been answered. GitHub waits at most 10 s for a
 * response, so the handler only stores the delivery (an inbox: nothing is lost if the process
 * dies) and this intake does the slow part. Fail closed: when GitHub cannot answer a permission
 * or review lookup (Octokit has already retried server errors with back-off; a rate limit is
 * waited out here), nothing runs and the person is told why.
 */
import type { Logger } from 'pino';
import { parseComment } from '../../core/comment-commands/parse-comment.js';
import { errorMessage } from '../../ports/errors.js';
import type { AuditAction, RunService, RunTarget } from '../../core/run-service/run-service.js';
import type { RepoRef, Requester } from '../../core/runs/run.js';
import type { InboxDelivery, RunStore } from '../../ports/run-store.js';
import { cancelAnswer, helpAnswer, pinAnswer, requestAnswer, undecidedReply, usageAnswer, type Answer } from './command-replies.js';
import { GithubConversation } from './github-conversation.js';
import type { OctokitForInstallation } from './octokit.js';
import type { Redact } from './redact-secrets.js';
import { checkRunActionSchema, isBot, issueCommentCreatedSchema, pullRequestClosedSchema, pullRequestSynchronizeSchema, pushSchema } from './webhook-payloads.js';

export interface WebhookIntakeDeps {
  /** The inbox of deliveries, and the runs a check run's buttons name. */
  store: Pick<RunStore, 'recordDelivery' | 'markDeliveryHandled' | 'pendingDeliveries' | 'getRun'>;
  runs: RunService;
  octokitFor: OctokitForInstallation;
  /** Removes the deployment's secrets from every reply (README "Security model"). */
  redact?: Redact;
  log: Logger;
  now?: () => Date;
  /** A push moved a repository's default branch: its schedules are read again. */
  onDefaultBranchPush?: (repo: RepoRef) => Promise<unknown>;
}

/** Who asked, where to answer, and what to record if deciding fails. */
interface Conversation {
  repo: RepoRef;
  number: number | null;
  requester: Requester;
  action: AuditAction;
  commentId: number | null;
  talk: GithubConversation;
}

function repositoryKey(payload: unknown): string {
  const name = (payload as { repository?: { full_name?: unknown } } | null)?.repository?.full_name;
  return typeof name === 'string' ? name.toLowerCase() : '';
}

export class WebhookIntake {
  private readonly inFlight = new Map<string, Promise<void>>();
  /** The last delivery scheduled per repository: deliveries of one repository are handled in order. */
  private readonly tails = new Map<string, Promise<void>>();
  private readonly now: () => Date;
  private closed = false;

  constructor(private readonly deps: WebhookIntakeDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  /** Records a delivery; false when it was delivered before (GitHub keeps the id on redelivery). */
  async accept(delivery: InboxDelivery): Promise<boolean> {
    const fresh = await this.deps.store.recordDelivery(delivery);
    if (fresh) this.schedule(delivery);
    return fresh;
  }

  /** Picks up deliveries a previous process accepted but did not finish. */
  async resumePending(): Promise<number> {
    const pending = await this.deps.store.pendingDeliveries(1000);
    for (const delivery of pending) this.schedule(delivery);
    return pending.length;
  }

  /** Resolves once every delivery accepted so far has been handled. */
  async drained(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()]);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.drained();
  }

  private schedule(delivery: InboxDelivery): void {
    if (this.inFlight.has(delivery.id) || this.closed) return;
    const log = this.deps.log.child({ deliveryId: delivery.id, event: delivery.event });
    // One repository's deliveries go one at a time, in the order received: limits are counted
    // correctly, and a /cancel never overtakes the /run before it.
    const key = repositoryKey(delivery.payload);
    const previous = this.tails.get(key) ?? Promise.resolve();
    const work = previous
      .then(() => this.route(delivery, log))
      .catch((error: unknown) => log.error({ err: error }, 'delivery could not be handled'))
      .then(() => this.deps.store.markDeliveryHandled(delivery.id, this.now()))
      .catch((error: unknown) => log.error({ err: error }, 'delivery could not be marked handled'))
      .finally(() => {
        this.inFlight.delete(delivery.id);
        if (this.tails.get(key) === work) this.tails.delete(key);
      });
    this.tails.set(key, work);
    this.inFlight.set(delivery.id, work);
  }

  private async route(delivery: InboxDelivery, log: Logger): Promise<void> {
    switch (delivery.event) {
      case 'issue_comment.created':
        return this.comment(delivery.payload, log);
      case 'pull_request.synchronize':
        return this.push(delivery.payload, log);
      case 'push':
        return this.branchPush(delivery.payload, log);
      case 'pull_request.closed':
        return this.pullRequestClosed(delivery.payload, log);
      case 'check_run.rerequested':
      case 'check_run.requested_action':
        return this.checkRunAction(delivery.payload, log);
      default:
        log.debug('event not handled');
    }
  }

  private async comment(raw: unknown, log: Logger): Promise<void> {
    const parsed = issueCommentCreatedSchema.safeParse(raw);
    if (!parsed.success) return this.malformed(parsed.error, log);
    const payload = parsed.data;
    const author = payload.comment.user ?? payload.sender;
    // Bots (this app included) never give commands: a reply quoting `/run` must not loop.
    if (isBot(author)) return;
    const command = parseComment(payload.comment.body ?? '');
    if (command.type === 'ignore') return;

    const repo = this.repoOf(payload);
    const talk = await this.talkFor(repo);
    const number = payload.issue.number;
    const requester: Requester = { kind: 'user', login: author.login };
    if (command.type === 'reply') {
      // A near miss is answered too, so it counts toward the command limit like a command.
      const answer = usageAnswer(author.login, await this.deps.runs.usage({ requester, repo, number, message: command.message }));
      return this.answer({ repo, number, requester, action: 'run', commentId: payload.comment.id, talk }, answer, log);
    }
    const isPullRequest = payload.issue.pull_request !== undefined && payload.issue.pull_request !== null;
    const defaultBranch = payload.repository.default_branch;
    const target: RunTarget = isPullRequest
      ? { kind: 'pull_request', number }
      : { kind: 'issue', number, ...(defaultBranch ? { defaultBranch } : {}) };
    const kind = command.command.kind;
    const action: AuditAction = kind === 'help' ? 'run' : kind;
    const conversation = { repo, number, requester, action, commentId: payload.comment.id, talk };
    await this.decide(conversation, log, async () => {
      const { runs } = this.deps;
      switch (command.command.kind) {
        case 'run': {
          const { task, params } = command.command;
          const outcome = await runs.request({ requester, repo, target, task, params, trigger: 'comment', commentId: payload.comment.id });
          log.info({ outcome: outcome.kind, actor: author.login, number }, '/run handled');
          return requestAnswer(author.login, outcome);
        }
        case 'retry': {
          const outcome = await runs.retry({ requester, repo, target: target as Extract<RunTarget, { number: number }>, commentId: payload.comment.id });
          log.info({ outcome: outcome.kind, actor: author.login, number }, '/retry handled');
          return requestAnswer(author.login, outcome);
        }
        case 'cancel': {
          const { runId } = command.command;
          const outcome = await runs.cancel({ requester, repo, scope: runId === null ? { kind: 'all', number } : { kind: 'run', runId } });
          log.info({ outcome: outcome.kind, actor: author.login, number }, '/cancel handled');
          return cancelAnswer(author.login, outcome);
        }
        case 'pin': {
          const { runId, durationMs } = command.command;
          const outcome = await runs.pin({ requester, repo, number, runId, durationMs });
          log.info({ outcome: outcome.kind, actor: author.login, number }, '/pin handled');
          return pinAnswer(author.login, outcome);
        }
        case 'help':
          return helpAnswer(author.login, await runs.help({ requester, repo, target }));
      }
    });
  }

  private async push(raw: unknown, log: Logger): Promise<void> {
    const parsed = pullRequestSynchronizeSchema.safeParse(raw);
    if (!parsed.success) return this.malformed(parsed.error, log);
    const payload = parsed.data;
    const result = await this.deps.runs.pushed({ repo: this.repoOf(payload), number: payload.number, headSha: payload.pull_request.head.sha });
    log.info({ number: payload.number, ...result }, 'push to a pull request handled');
  }

  private async branchPush(raw: unknown, log: Logger): Promise<void> {
    const parsed = pushSchema.safeParse(raw);
    if (!parsed.success) return this.malformed(parsed.error, log);
    const payload = parsed.data;
    const result = await this.deps.runs.branchPushed({
      repo: this.repoOf(payload),
      ref: payload.ref,
      defaultBranch: payload.repository.default_branch ?? null,
      headSha: payload.after,
    });
    if (result.defaultBranch && this.deps.onDefaultBranchPush) {
      await this.deps.onDefaultBranchPush(this.repoOf(payload)).catch((error: unknown) => log.warn({ err: error }, 'could not read the schedules again'));
    }
    log.info({ ref: payload.ref, ...result }, 'push to a branch handled');
  }

  private async pullRequestClosed(raw: unknown, log: Logger): Promise<void> {
    const parsed = pullRequestClosedSchema.safeParse(raw);
    if (!parsed.success) return this.malformed(parsed.error, log);
    const payload = parsed.data;
    const merged = payload.pull_request.merged === true;
    const result = await this.deps.runs.closed({ repo: this.repoOf(payload), number: payload.number, merged });
    log.info({ number: payload.number, merged, ...result }, 'closed pull request handled');
  }

  private async checkRunAction(raw: unknown, log: Logger): Promise<void> {
    const parsed = checkRunActionSchema.safeParse(raw);
    if (!parsed.success) return this.malformed(parsed.error, log);
    const payload = parsed.data;
    if (isBot(payload.sender)) return;
    const runId = payload.check_run.external_id;
    const run = runId ? await this.deps.store.getRun(runId) : null;
    const repo = this.repoOf(payload);
    if (!run || run.repo.owner !== repo.owner || run.repo.name !== repo.name) {
      log.info({ checkRunId: payload.check_run.id }, 'check run is not one of our runs; ignored');
      return;
    }
    const requester: Requester = { kind: 'user', login: payload.sender.login };
    const talk = await this.talkFor(repo);
    if (payload.action === 'rerequested') {
      await this.decide({ repo, number: run.number, requester, action: 'rerun', commentId: null, talk }, log, async () => {
        const outcome = await this.deps.runs.rerun({ requester, run, headSha: payload.check_run.head_sha });
        log.info({ outcome: outcome.kind, actor: requester.login }, 're-run handled');
        return requestAnswer(requester.login, outcome);
      });
    } else if (payload.requested_action?.identifier === 'cancel') {
      await this.decide({ repo, number: run.number, requester, action: 'cancel', commentId: null, talk }, log, async () => {
        const outcome = await this.deps.runs.cancel({ requester, repo, scope: { kind: 'run', runId: run.id } });
        log.info({ outcome: outcome.kind, actor: requester.login }, 'cancel button handled');
        // The button's check run already shows the outcome; only a refusal needs words.
        return outcome.kind === 'refused' ? cancelAnswer(requester.login, outcome) : { reaction: null, reply: null };
      });
    }
  }

  /**
   * Decides, then answers on GitHub. Rate limits up to a minute and server errors were already
   * waited out by the Octokit client (github-octokit.ts); on a failure nothing runs, the audit log
   * records why, and the person is told.
   */
  private async decide(conversation: Conversation, log: Logger, work: () => Promise<Answer>): Promise<void> {
    let answer: Answer;
    try {
      answer = await work();
    } catch (error) {
      log.error({ err: error }, 'could not decide; nothing runs');
      const { repo, number, requester, action } = conversation;
      await this.deps.runs.undecided({ requester, repo, number, action, error: errorMessage(error) });
      answer = { reaction: null, reply: number === null ? null : undecidedReply(requester.login, errorMessage(error)) };
    }
    return this.answer(conversation, answer, log);
  }

  private async answer(conversation: Conversation, answer: Answer, log: Logger): Promise<void> {
    const { talk, number, commentId } = conversation;
    if (answer.reply !== null && number !== null) {
      await talk.reply(number, answer.reply).catch((error: unknown) => log.error({ err: error }, 'could not reply'));
    }
    if (answer.reaction !== null && commentId !== null) {
      await talk.react(commentId, answer.reaction).catch((error: unknown) => log.warn({ err: error }, 'could not react to the comment'));
    }
  }

  private repoOf(payload: { repository: { name: string; owner: { login: string } }; installation: { id: number } }): RepoRef {
    return { owner: payload.repository.owner.login, name: payload.repository.name, installationId: payload.installation.id };
  }

  private async talkFor(repo: RepoRef): Promise<GithubConversation> {
    return new GithubConversation(await this.deps.octokitFor(repo.installationId), repo, this.deps.redact);
  }

  private malformed(error: { issues: unknown[] }, log: Logger): void {
    log.warn({ issues: error.issues.slice(0, 5) }, 'webhook payload lacks fields the app needs; ignored');
  }
}
