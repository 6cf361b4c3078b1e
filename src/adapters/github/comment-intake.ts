/**
 * Handles comment deliveries after the webhook has been answered. GitHub waits at most 10 s for
 * a response, so the handler only stores the delivery (an inbox: nothing is lost if the process
 * dies) and this intake does the slow part. A GitHub failure while deciding is retried with
 * back-off; if it never succeeds nothing runs (fail closed) and the commenter is told.
 */
import type { Logger } from 'pino';
import { parseComment } from '../../core/commands/parse-comment.js';
import { errorMessage, RetryableError } from '../../core/errors.js';
import { handleCommand, type CommandDeps } from '../../core/runs/handle-command.js';
import type { InboxDelivery, RunStore } from '../../ports/run-store.js';
import type { CheckReporter } from '../../ports/check-reporter.js';
import type { RunQueue } from '../../ports/run-queue.js';
import type { IdGenerator } from '../../core/runs/ids.js';
import { OctokitRepoHost } from './octokit-repo-host.js';
import type { OctokitForInstallation } from './octokit.js';
import { issueCommentCreatedSchema } from './webhook-payloads.js';

export interface CommentIntakeDeps {
  store: RunStore;
  queue: RunQueue;
  checks: CheckReporter;
  octokitFor: OctokitForInstallation;
  log: Logger;
  newId: IdGenerator;
  now?: () => Date;
  /** Waits between attempts when GitHub fails; the last failure is reported to the commenter. */
  retryDelaysMs?: number[];
}

export class CommentIntake {
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly now: () => Date;
  private closed = false;

  constructor(private readonly deps: CommentIntakeDeps) {
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
    const work = this.process(delivery)
      .catch((error: unknown) => this.deps.log.error({ err: error, deliveryId: delivery.id }, 'delivery could not be handled'))
      .finally(() => this.inFlight.delete(delivery.id));
    this.inFlight.set(delivery.id, work);
  }

  private async process(delivery: InboxDelivery): Promise<void> {
    const log = this.deps.log.child({ deliveryId: delivery.id, event: delivery.event });
    const parsed = issueCommentCreatedSchema.safeParse(delivery.payload);
    if (!parsed.success) {
      log.warn({ issues: parsed.error.issues.slice(0, 5) }, 'webhook payload lacks fields the app needs; ignored');
      return this.done(delivery);
    }
    const payload = parsed.data;
    const author = payload.comment.user ?? payload.sender;
    if (author.type === 'Bot' || author.login.endsWith('[bot]')) return this.done(delivery);
    const command = parseComment(payload.comment.body ?? '');
    if (command.type === 'ignore') return this.done(delivery);

    const repo = { owner: payload.repository.owner.login, name: payload.repository.name, installationId: payload.installation.id };
    const octokit = await this.deps.octokitFor(repo.installationId);
    const host = new OctokitRepoHost(octokit, repo);
    const number = payload.issue.number;
    if (command.type === 'reply') {
      await host.reply(number, `@${author.login} ${command.message}`);
      return this.done(delivery);
    }

    const commandDeps: CommandDeps = {
      store: this.deps.store,
      queue: this.deps.queue,
      checks: this.deps.checks,
      host,
      log,
      newId: this.deps.newId,
      now: this.now,
    };
    const input = {
      repo,
      number,
      isPullRequest: payload.issue.pull_request !== undefined && payload.issue.pull_request !== null,
      commentId: payload.comment.id,
      actor: author.login,
      command: command.command,
    };
    const delays = this.deps.retryDelaysMs ?? [1000, 5000, 15000];
    for (let attempt = 0; ; attempt += 1) {
      try {
        const outcome = await handleCommand(commandDeps, input);
        log.info({ outcome: outcome.kind, actor: input.actor, number }, 'command handled');
        return this.done(delivery);
      } catch (error) {
        const delay = delays[attempt];
        if (error instanceof RetryableError && delay !== undefined && !this.closed) {
          log.warn({ err: error, retryInMs: error.retryAfterMs ?? delay }, 'GitHub failed while deciding; retrying');
          await new Promise((resolve) => setTimeout(resolve, error.retryAfterMs ?? delay));
          continue;
        }
        log.error({ err: error }, 'command failed');
        await this.deps.store.audit({
          at: this.now(),
          repo: `${repo.owner}/${repo.name}`,
          number,
          actor: input.actor,
          action: input.command.kind,
          allowed: false,
          reason: `could not decide: ${errorMessage(error)}`,
          runId: null,
        });
        await host
          .reply(number, `@${input.actor} nothing was run: task-mgmt could not check this command with GitHub (${errorMessage(error)}). Please try again later.`)
          .catch((replyError: unknown) => log.error({ err: replyError }, 'could not reply about the failure'));
        return this.done(delivery);
      }
    }
  }

  private async done(delivery: InboxDelivery): Promise<void> {
    await this.deps.store.markDeliveryHandled(delivery.id, this.now());
  }
}
