/**
 * Handles webhook deliveries after GitHub has been answered. GitHub waits at most 10 s for a
 * response, so the handler only stores the delivery (an inbox: nothing is lost if the process
 * dies) and this intake does the slow part. Fail closed: when GitHub cannot answer a permission
 * or review lookup (Octokit has already retried server errors with back-off; a rate limit is
 * waited out here), nothing runs and the person is told why.
 */
import type { Logger } from 'pino';
import { parseComment } from '../../core/comment-commands/parse-comment.js';
import { errorMessage, RetryableError } from '../../ports/errors.js';
import type { CommandDeps, CommandLimits } from '../../core/runs/command-deps.js';
import { cancelFromCheck, handleCommand, pushedToPullRequest, rerunFromCheck } from '../../core/runs/handle-command.js';
import type { IdGenerator } from '../../core/runs/ids.js';
import type { TaskTypeCatalog } from '../../core/manifest/load-manifest.js';
import { readManifest } from '../../core/manifest/read-manifest.js';
import type { RepoRef } from '../../core/runs/run.js';
import type { CheckReporter } from '../../ports/check-reporter.js';
import type { RunQueue } from '../../ports/run-queue.js';
import type { InboxDelivery, RunStore } from '../../ports/run-store.js';
import { OctokitRepoHost } from './octokit-repo-host.js';
import type { OctokitForInstallation } from './octokit.js';
import { checkRunActionSchema, isBot, issueCommentCreatedSchema, pullRequestSynchronizeSchema } from './webhook-payloads.js';

export interface WebhookIntakeDeps {
  store: RunStore;
  queue: RunQueue;
  checks: CheckReporter;
  octokitFor: OctokitForInstallation;
  log: Logger;
  newId: IdGenerator;
  gatewayUrl: string;
  limits: CommandLimits;
  taskTypes: TaskTypeCatalog;
  defaultImage: string;
  now?: () => Date;
  /** Longest wait for a rate limit to reset before giving up and telling the user. */
  maxRateLimitWaitMs?: number;
}

/** Who to tell when deciding fails, and how. */
interface Conversation {
  repo: RepoRef;
  number: number | null;
  actor: string;
  action: string;
  host: OctokitRepoHost;
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

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.inFlight.values());
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
    const host = await this.hostFor(repo);
    const number = payload.issue.number;
    if (command.type === 'reply') return host.reply(number, `@${author.login} ${command.message}`);
    const input = {
      repo,
      number,
      isPullRequest: payload.issue.pull_request !== undefined && payload.issue.pull_request !== null,
      commentId: payload.comment.id,
      actor: author.login,
      command: command.command,
    };
    await this.decide({ repo, number, actor: author.login, action: command.command.kind, host }, log, async (deps) => {
      const outcome = await handleCommand(deps, input);
      log.info({ outcome: outcome.kind, actor: input.actor, number }, 'command handled');
    });
  }

  private async push(raw: unknown, log: Logger): Promise<void> {
    const parsed = pullRequestSynchronizeSchema.safeParse(raw);
    if (!parsed.success) return this.malformed(parsed.error, log);
    const payload = parsed.data;
    const repo = this.repoOf(payload);
    const host = await this.hostFor(repo);
    const deps = this.commandDeps(host, log);
    const headSha = payload.pull_request.head.sha;
    // The pushed head's manifest decides (`cancel_on_push`); an unreadable one keeps the safe default.
    const manifest = await readManifest(host, headSha, this.deps.taskTypes, this.deps.defaultImage).catch(() => null);
    const cancelOnPush = manifest?.ok ? manifest.manifest.cancelOnPush : true;
    const result = await pushedToPullRequest(deps, { repo, number: payload.number, headSha, cancelOnPush });
    log.info({ number: payload.number, ...result }, 'push to a pull request handled');
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
    const host = await this.hostFor(repo);
    const actor = payload.sender.login;
    if (payload.action === 'rerequested') {
      await this.decide({ repo, number: run.number, actor, action: 'rerun', host }, log, async (deps) => {
        const outcome = await rerunFromCheck(deps, { run, actor, headSha: payload.check_run.head_sha });
        log.info({ outcome: outcome.kind, actor }, 're-run handled');
      });
    } else if (payload.requested_action?.identifier === 'cancel') {
      await this.decide({ repo, number: run.number, actor, action: 'cancel', host }, log, async (deps) => {
        const outcome = await cancelFromCheck(deps, { run, actor });
        log.info({ outcome: outcome.kind, actor }, 'cancel button handled');
      });
    }
  }

  /** Runs a decision; waits out rate limits, and on a final failure decides "no" and says so. */
  private async decide(talk: Conversation, log: Logger, work: (deps: CommandDeps) => Promise<void>): Promise<void> {
    const deps = this.commandDeps(talk.host, log);
    const maxWait = this.deps.maxRateLimitWaitMs ?? 60_000;
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await work(deps);
      } catch (error) {
        const wait = error instanceof RetryableError ? error.retryAfterMs : undefined;
        if (wait !== undefined && wait <= maxWait && attempt < 3 && !this.closed) {
          log.warn({ err: error, retryInMs: wait }, 'GitHub rate limit while deciding; waiting');
          await new Promise((resolve) => setTimeout(resolve, wait));
          continue;
        }
        log.error({ err: error }, 'could not decide; nothing runs');
        await this.deps.store.audit({
          at: this.now(),
          repo: `${talk.repo.owner}/${talk.repo.name}`,
          number: talk.number,
          actor: talk.actor,
          action: talk.action,
          allowed: false,
          reason: `could not decide: ${errorMessage(error)}`,
          runId: null,
        });
        if (talk.number !== null) {
          await talk.host
            .reply(
              talk.number,
              `@${talk.actor} nothing was run: task-mgmt could not check this request with GitHub (${errorMessage(error)}), ` +
                'and it never runs what it could not check. Please try again later.',
            )
            .catch((replyError: unknown) => log.error({ err: replyError }, 'could not reply about the failure'));
        }
        return;
      }
    }
  }

  private commandDeps(host: OctokitRepoHost, log: Logger): CommandDeps {
    return {
      store: this.deps.store,
      queue: this.deps.queue,
      checks: this.deps.checks,
      host,
      log,
      newId: this.deps.newId,
      now: this.now,
      gatewayUrl: this.deps.gatewayUrl,
      limits: this.deps.limits,
      taskTypes: this.deps.taskTypes,
      defaultImage: this.deps.defaultImage,
    };
  }

  private repoOf(payload: { repository: { name: string; owner: { login: string } }; installation: { id: number } }): RepoRef {
    return { owner: payload.repository.owner.login, name: payload.repository.name, installationId: payload.installation.id };
  }

  private async hostFor(repo: RepoRef): Promise<OctokitRepoHost> {
    return new OctokitRepoHost(await this.deps.octokitFor(repo.installationId), repo);
  }

  private malformed(error: { issues: unknown[] }, log: Logger): void {
    log.warn({ issues: error.issues.slice(0, 5) }, 'webhook payload lacks fields the app needs; ignored');
  }
}
