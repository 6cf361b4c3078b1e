import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppAuth } from './app-auth.js';
import { GitRepo } from './git-repo.js';
import { FakeHttpServer, type FaultRule, type RecordedRequest } from './http-server.js';
import { OpenApiValidator, type OpenApiViolation } from './openapi-validator.js';
import { FakeOAuth } from './oauth.js';
import { Representations } from './representations.js';
import { Router } from './router.js';
import { installationOf, registerRoutes } from './routes.js';
import { FakeState, type CheckRunRecord, type Installation, type IssueComment, type Reaction, type Repo, type RepoState, type Review, type Role } from './state.js';
import { buildActionlessPayload, buildPayload } from './webhook-payloads.js';
import { WebhookSender, type DeliveryOptions, type DeliveryResult } from './webhook-sender.js';

export type { CheckRunRecord, FaultRule, IssueComment, Reaction, RecordedRequest, Repo, Review, Role, OpenApiViolation, DeliveryOptions, DeliveryResult };

export interface FakeGitHubOptions {
  appId?: number;
  webhookSecret?: string;
  appSlug?: string;
  /** Where webhooks go; can be set later with setWebhookTarget. */
  webhookTarget?: string;
  /** The account the app is installed on. */
  installationAccount?: string;
  /** Least milliseconds between a request's arrival and its answer (default 0); see setLatency. */
  latencyMs?: number;
}

/** A codeload link lives five minutes, like GitHub's for private repositories. */
const CODELOAD_LIFETIME_MS = 5 * 60 * 1000;

/**
 * A GitHub that tests can reach: a real HTTP server speaking the part of the REST API the
 * app uses, backed by real git repositories, signing webhooks as GitHub does.
 */
export class FakeGitHub {
  readonly appId: number;
  readonly appSlug: string;
  readonly webhookSecret: string;
  readonly installationId: number;
  readonly url: string;
  readonly host: string;

  private readonly codeload = new Map<string, { repo: RepoState; sha: string; expiresAt: number }>();

  private constructor(
    private readonly state: FakeState,
    private readonly auth: AppAuth,
    private readonly http: FakeHttpServer,
    private readonly sender: WebhookSender,
    private readonly reps: Representations,
    private readonly installation: Installation,
    /** Shared with the routes: the first is `installation`, addInstallation appends. */
    private readonly installations: Installation[],
    private readonly tempDir: string,
    port: number,
    options: Required<Pick<FakeGitHubOptions, 'appSlug' | 'webhookSecret'>>,
    /** The App's OAuth user flow: `oauth.clientId` and `oauth.clientSecret` are the App's GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET. */
    readonly oauth: FakeOAuth,
  ) {
    this.appId = auth.appId;
    this.appSlug = options.appSlug;
    this.webhookSecret = options.webhookSecret;
    this.installationId = installation.id;
    this.host = `127.0.0.1:${port}`;
    this.url = `http://${this.host}`;
  }

  static async start(options: FakeGitHubOptions = {}): Promise<FakeGitHub> {
    const appId = options.appId ?? 100_000 + Math.floor(Math.random() * 900_000);
    const appSlug = options.appSlug ?? 'task-mgmt';
    const webhookSecret = options.webhookSecret ?? randomBytes(16).toString('hex');
    const state = new FakeState();
    const installation: Installation = {
      id: 40_000_000 + Math.floor(Math.random() * 1_000_000),
      account: state.user(options.installationAccount ?? 'octo-org', 'Organization'),
    };
    const auth = new AppAuth(appId);
    const router = new Router();
    const tempDir = await mkdtemp(join(tmpdir(), 'fake-github-'));
    // Codeload links need the fake itself, which exists only once the server listens.
    const holder: { fake?: FakeGitHub } = {};
    const reps = new Representations({ id: appId, slug: appSlug });
    const installations = [installation];
    registerRoutes(router, {
      state,
      reps,
      auth,
      installation,
      installations,
      appSlug,
      appBot: () => state.user(`${appSlug}[bot]`, 'Bot'),
      codeloadUrl: (repo, sha) => holder.fake!.codeloadUrl(repo, sha),
      now: () => new Date(),
    });
    const validator = await OpenApiValidator.create(router.served());
    const oauth = new FakeOAuth((login) => {
      state.user(login);
      return auth.issueUserToken(login);
    });
    const http = new FakeHttpServer(router, auth, validator, async (url, res, request) =>
      (await oauth.handle(url, res, request.method, request.body, request.contentType)) || holder.fake!.serveCodeload(url, res),
    );
    const port = await http.listen();
    reps.baseUrl = `http://127.0.0.1:${port}`;
    const sender = new WebhookSender(appId, webhookSecret, options.webhookTarget);
    const fake = new FakeGitHub(state, auth, http, sender, reps, installation, installations, tempDir, port, { appSlug, webhookSecret }, oauth);
    holder.fake = fake;
    if (options.latencyMs !== undefined) fake.setLatency(options.latencyMs);
    return fake;
  }

  /** A token that user's own client would hold (OAuth or personal access token). */
  userToken(login: string): string {
    this.state.user(login);
    return this.auth.issueUserToken(login);
  }

  get privateKey(): string {
    return this.auth.privateKey;
  }

  get requests(): RecordedRequest[] {
    return this.http.requests;
  }

  /** Requests to endpoints the fake does not serve (answered 404). */
  get unhandled(): RecordedRequest[] {
    return this.http.unhandled;
  }

  get openapiViolations(): OpenApiViolation[] {
    return this.http.openapiViolations;
  }

  /** Every webhook delivered so far, with payload and headers. */
  get deliveries() {
    return this.sender.sent;
  }

  /** The app's bot login, author of the app's comments and reactions. */
  get botLogin(): string {
    return `${this.appSlug}[bot]`;
  }

  setWebhookTarget(url: string): void {
    this.sender.target = url;
  }

  /** Environment for spawning the app against this fake. */
  appEnv(): Record<'APP_ID' | 'PRIVATE_KEY' | 'WEBHOOK_SECRET' | 'GHE_HOST' | 'GHE_PROTOCOL', string> {
    return {
      APP_ID: String(this.appId),
      PRIVATE_KEY: this.privateKey,
      WEBHOOK_SECRET: this.webhookSecret,
      GHE_HOST: this.host,
      GHE_PROTOCOL: 'http',
    };
  }

  /** The App's OAuth client, as the app reads it: dashboard sign-in goes through the fake. */
  oauthEnv(): Record<'GITHUB_CLIENT_ID' | 'GITHUB_CLIENT_SECRET', string> {
    return { GITHUB_CLIENT_ID: this.oauth.clientId, GITHUB_CLIENT_SECRET: this.oauth.clientSecret };
  }

  failNext(rule: FaultRule): void {
    this.http.failNext(rule);
  }

  /**
   * Every request to the fake (REST and codeload) is then answered no sooner than `ms` after it
   * arrived, as if GitHub were that far away; the fake's own work runs meanwhile. Webhook
   * deliveries, which the fake sends, are not delayed.
   */
  setLatency(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`latency must be a number of milliseconds ≥ 0, got ${ms}`);
    this.http.latencyMs = ms;
  }

  async close(): Promise<void> {
    await this.http.close();
    await rm(this.tempDir, { recursive: true, force: true });
  }

  // ---------------------------------------------------------------- state

  async createRepo(options: { owner: string; name: string; files?: Record<string, string>; private?: boolean; defaultBranch?: string }): Promise<Repo> {
    const defaultBranch = options.defaultBranch ?? 'main';
    const dir = join(this.tempDir, options.owner, options.name);
    const git = await GitRepo.init(dir, defaultBranch);
    const repo: RepoState = {
      id: this.state.ids.take('repo', 700_000_000),
      owner: options.owner,
      name: options.name,
      fullName: `${options.owner}/${options.name}`,
      defaultBranch,
      private: options.private ?? false,
      dir,
      createdAt: isoNow(),
      git,
      roles: new Map(),
    };
    const organization = this.installations.some((installation) => installation.account.login === options.owner);
    this.state.user(options.owner, organization ? 'Organization' : undefined);
    this.state.repos.set(repo.fullName.toLowerCase(), repo);
    await git.commit(defaultBranch, options.files ?? { 'README.md': `# ${options.name}\n` }, { message: 'Initial commit' });
    return publicRepo(repo);
  }

  /**
   * Installs the App on another account (an organization) and returns the installation's id. The
   * repositories of that owner then belong to it: their webhooks carry its id, and only its tokens
   * reach them (any other installation's get 404, as on GitHub). Repositories of accounts without
   * an installation of their own stay with the first one.
   */
  addInstallation(account: string): number {
    if (this.installations.some((installation) => installation.account.login.toLowerCase() === account.toLowerCase())) {
      throw new Error(`the App is already installed on ${account}`);
    }
    const installation: Installation = { id: this.state.ids.take('installation', 41_000_000), account: this.state.user(account, 'Organization') };
    this.installations.push(installation);
    return installation.id;
  }

  /** The id of the installation that can act on `repo` (see addInstallation). */
  installationIdOf(repo: Pick<Repo, 'owner'>): number {
    return installationOf(this.installations, repo).id;
  }

  setRole(repo: Repo, login: string, role: Role): void {
    this.state.user(login);
    this.repoState(repo).roles.set(login.toLowerCase(), role);
  }

  /** Commits to `branch` (created from the default branch if new); returns the SHA. */
  async commit(repo: Repo, branch: string, files: Record<string, string | null>, message?: string): Promise<string> {
    const state = this.repoState(repo);
    const sha = await state.git.commit(branch, files, { from: state.defaultBranch, ...(message ? { message } : {}) });
    for (const issue of this.state.issuesOf(state).values()) {
      if (issue.pull && issue.state === 'open' && issue.pull.headRef === branch) issue.pull.headSha = sha;
    }
    return sha;
  }

  headOf(repo: Repo, branch: string): string {
    // Synchronous so tests can use it inline in expectations.
    const out = gitRevParse(this.repoState(repo).dir, `refs/heads/${branch}`);
    return out;
  }

  createIssue(repo: Repo, options: { author: string; title: string; body?: string }): number {
    const state = this.repoState(repo);
    const issues = this.state.issuesOf(state);
    const number = issues.size + 1;
    const now = isoNow();
    issues.set(number, {
      id: this.state.ids.take('issue', 2_000_000_000),
      number,
      title: options.title,
      body: options.body ?? null,
      user: this.state.user(options.author),
      state: 'open',
      createdAt: now,
      updatedAt: now,
    });
    return number;
  }

  checkRuns(repo: Repo, filter: { headSha?: string; name?: string } = {}): CheckRunRecord[] {
    const key = repo.fullName.toLowerCase();
    return [...this.state.checkRuns.values()].filter(
      (r) => r.repo === key && (!filter.headSha || r.headSha === filter.headSha) && (!filter.name || r.name === filter.name),
    );
  }

  commentsOn(repo: Repo, number: number): IssueComment[] {
    const key = repo.fullName.toLowerCase();
    return [...this.state.comments.values()].filter((c) => c.repo === key && c.issueNumber === number);
  }

  reactionsOn(commentId: number): Reaction[] {
    return this.state.reactions.filter((r) => r.commentId === commentId);
  }

  reviewsOn(repo: Repo, number: number): Review[] {
    return [...this.state.reviewsOf(repo, number)];
  }

  /** Polls `predicate` every 25 ms until it holds (or returns a truthy value). */
  async waitFor<T>(predicate: () => T | Promise<T>, options: { timeoutMs?: number; message?: string } = {}): Promise<NonNullable<T>> {
    const deadline = Date.now() + (options.timeoutMs ?? 5000);
    for (;;) {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
      if (Date.now() > deadline) throw new Error(options.message ?? `Condition not met within ${options.timeoutMs ?? 5000} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  // ------------------------------------------------------------- webhooks

  /** Delivers a raw event; prefer the helpers below, which also change state. */
  deliver(event: string, payload: unknown, options?: DeliveryOptions): Promise<DeliveryResult> {
    return this.sender.deliver(event, payload, options);
  }

  async comment(repo: Repo, number: number, login: string, body: string, options?: DeliveryOptions): Promise<{ delivery: DeliveryResult; commentId: number }> {
    const state = this.repoState(repo);
    const issue = this.issue(state, number);
    const now = isoNow();
    const comment = { id: this.state.ids.take('comment', 1_000_000), issueNumber: number, user: this.state.user(login), body, createdAt: now, updatedAt: now, repo: state.fullName.toLowerCase() };
    this.state.comments.set(comment.id, comment);
    const payload = buildPayload('issue_comment', 'created', {
      ...this.envelope(state, login),
      issue: this.reps.issue(state, this.ownerOf(state), issue, this.association(state, issue.user.login)),
      comment: this.reps.comment(state, comment, this.association(state, login), []),
    });
    const delivery = await this.deliver('issue_comment', payload, options);
    return { delivery, commentId: comment.id };
  }

  async editComment(repo: Repo, commentId: number, body: string, options?: DeliveryOptions): Promise<DeliveryResult> {
    const state = this.repoState(repo);
    const comment = this.state.comments.get(commentId);
    if (!comment) throw new Error(`No comment ${commentId}`);
    const before = comment.body;
    comment.body = body;
    comment.updatedAt = isoNow();
    const issue = this.issue(state, comment.issueNumber);
    const payload = buildPayload('issue_comment', 'edited', {
      ...this.envelope(state, comment.user.login),
      changes: { body: { from: before } },
      issue: this.reps.issue(state, this.ownerOf(state), issue, this.association(state, issue.user.login)),
      comment: this.reps.comment(state, comment, this.association(state, comment.user.login), this.reactionsOn(commentId)),
    });
    return this.deliver('issue_comment', payload, options);
  }

  async openPullRequest(repo: Repo, options: { author: string; head: string; base?: string; title?: string; body?: string }, delivery?: DeliveryOptions): Promise<{ number: number; delivery: DeliveryResult }> {
    const state = this.repoState(repo);
    const base = options.base ?? state.defaultBranch;
    const headSha = await state.git.resolve(`refs/heads/${options.head}`);
    const baseSha = await state.git.resolve(`refs/heads/${base}`);
    if (!headSha || !baseSha) throw new Error(`Branches ${options.head} and ${base} must exist before opening a pull request`);
    const number = this.createIssue(repo, { author: options.author, title: options.title ?? `Change from ${options.head}`, ...(options.body ? { body: options.body } : {}) });
    const issue = this.issue(state, number);
    issue.pull = { id: this.state.ids.take('pull', 1_500_000_000), headRef: options.head, headSha, baseRef: base, baseSha, merged: false };
    const result = await this.deliver('pull_request', buildPayload('pull_request', 'opened', {
      ...this.envelope(state, options.author),
      number,
      pull_request: this.pullBody(state, number),
    }), delivery);
    return { number, delivery: result };
  }

  async pushToPullRequest(repo: Repo, number: number, files: Record<string, string | null>, options?: DeliveryOptions): Promise<{ before: string; after: string; delivery: DeliveryResult }> {
    const state = this.repoState(repo);
    const pull = this.issue(state, number).pull;
    if (!pull) throw new Error(`#${number} is not a pull request`);
    const before = pull.headSha;
    const after = await this.commit(repo, pull.headRef, files);
    const delivery = await this.deliver('pull_request', buildPayload('pull_request', 'synchronize', {
      ...this.envelope(state, this.issue(state, number).user.login),
      number,
      before,
      after,
      pull_request: this.pullBody(state, number),
    }), options);
    return { before, after, delivery };
  }

  /**
   * Closes a pull request, or marks it merged (the base branch is left as it is), and delivers
   * `pull_request.closed`.
   */
  /**
   * Pushes commits to `branch` as `login` and delivers the `push` event GitHub sends (a branch that
   * is new starts from the default branch). Returns the new head and the delivery.
   */
  async push(repo: Repo, branch: string, files: Record<string, string | null>, login = 'octocat', options?: DeliveryOptions): Promise<{ before: string; after: string; delivery: DeliveryResult }> {
    const state = this.repoState(repo);
    const before = (await state.git.resolve(`refs/heads/${branch}`)) ?? '0'.repeat(40);
    const after = await this.commit(repo, branch, files);
    const payload = buildActionlessPayload('push', {
      ...this.envelope(state, login),
      ref: `refs/heads/${branch}`,
      before,
      after,
      created: before === '0'.repeat(40),
      deleted: false,
      forced: false,
      compare: `${this.url}/${state.fullName}/compare/${before.slice(0, 12)}...${after.slice(0, 12)}`,
      pusher: { name: login, email: `${login}@users.noreply.github.com` },
    });
    const delivery = await this.deliver('push', payload, options);
    return { before, after, delivery };
  }

  async closePullRequest(repo: Repo, number: number, options: { merged?: boolean; by?: string } = {}, delivery?: DeliveryOptions): Promise<DeliveryResult> {
    const state = this.repoState(repo);
    const issue = this.issue(state, number);
    if (!issue.pull) throw new Error(`#${number} is not a pull request`);
    const now = isoNow();
    issue.state = 'closed';
    issue.updatedAt = now;
    issue.pull.merged = options.merged ?? false;
    return this.deliver('pull_request', buildPayload('pull_request', 'closed', {
      ...this.envelope(state, options.by ?? issue.user.login),
      number,
      pull_request: { ...this.pullBody(state, number), closed_at: now, merged_at: issue.pull.merged ? now : null },
    }), delivery);
  }

  async review(repo: Repo, number: number, login: string, reviewState: Review['state'], commitId?: string, options?: DeliveryOptions): Promise<{ reviewId: number; delivery: DeliveryResult }> {
    const state = this.repoState(repo);
    const pull = this.issue(state, number).pull;
    if (!pull) throw new Error(`#${number} is not a pull request`);
    const review: Review = { id: this.state.ids.take('review', 80_000_000), user: this.state.user(login), state: reviewState, body: null, commitId: commitId ?? pull.headSha, submittedAt: isoNow() };
    this.state.reviewsOf(state, number).push(review);
    const delivery = await this.deliver('pull_request_review', buildPayload('pull_request_review', 'submitted', {
      ...this.envelope(state, login),
      review: { ...this.reps.review(state, number, review, this.association(state, login)), state: reviewState.toLowerCase() },
      pull_request: this.pullBody(state, number),
    }), options);
    return { reviewId: review.id, delivery };
  }

  async dismissReview(repo: Repo, number: number, reviewId: number, login: string, options?: DeliveryOptions): Promise<DeliveryResult> {
    const state = this.repoState(repo);
    const review = this.state.reviewsOf(state, number).find((r) => r.id === reviewId);
    if (!review) throw new Error(`No review ${reviewId} on #${number}`);
    review.state = 'DISMISSED';
    return this.deliver('pull_request_review', buildPayload('pull_request_review', 'dismissed', {
      ...this.envelope(state, login),
      review: { ...this.reps.review(state, number, review, this.association(state, review.user.login)), state: 'dismissed' },
      pull_request: this.pullBody(state, number),
    }), options);
  }

  clickRerun(repo: Repo, checkRunId: number, login: string, options?: DeliveryOptions): Promise<DeliveryResult> {
    return this.checkRunEvent(repo, checkRunId, login, 'rerequested', {}, options);
  }

  clickAction(repo: Repo, checkRunId: number, login: string, identifier: string, options?: DeliveryOptions): Promise<DeliveryResult> {
    return this.checkRunEvent(repo, checkRunId, login, 'requested_action', { requested_action: { identifier } }, options);
  }

  // ------------------------------------------------------------- internals

  private checkRunEvent(repo: Repo, checkRunId: number, login: string, action: string, extra: Record<string, unknown>, options?: DeliveryOptions): Promise<DeliveryResult> {
    const state = this.repoState(repo);
    const run = this.state.checkRuns.get(checkRunId);
    if (!run) throw new Error(`No check run ${checkRunId}`);
    this.state.user(login);
    const pulls = [...this.state.issuesOf(state).values()].filter((i) => i.pull && i.state === 'open' && i.pull.headSha === run.headSha);
    const checkRun = {
      ...this.reps.checkRun(state, run, this.installation.account),
      pull_requests: pulls.map((i) => ({
        url: `${this.reps.api}/repos/${state.fullName}/pulls/${i.number}`,
        id: i.pull!.id,
        number: i.number,
        head: { ref: i.pull!.headRef, sha: i.pull!.headSha, repo: { id: state.id, url: `${this.reps.api}/repos/${state.fullName}`, name: state.name } },
        base: { ref: i.pull!.baseRef, sha: i.pull!.baseSha, repo: { id: state.id, url: `${this.reps.api}/repos/${state.fullName}`, name: state.name } },
      })),
    };
    return this.deliver('check_run', buildPayload('check_run', action, { ...this.envelope(state, login), check_run: checkRun, ...extra }), options);
  }

  private envelope(repo: RepoState, senderLogin: string): Record<string, unknown> {
    return {
      repository: this.reps.repository(repo, this.ownerOf(repo)),
      installation: { id: this.installationIdOf(repo), node_id: this.reps.nodeId('Installation', this.installationIdOf(repo)) },
      sender: this.reps.user(this.state.user(senderLogin)),
    };
  }

  private pullBody(repo: RepoState, number: number): Record<string, unknown> {
    const issue = this.issue(repo, number);
    return this.reps.pullRequest(repo, this.ownerOf(repo), issue, this.association(repo, issue.user.login));
  }

  private issue(repo: RepoState, number: number) {
    const issue = this.state.issuesOf(repo).get(number);
    if (!issue) throw new Error(`No issue or pull request #${number} in ${repo.fullName}`);
    return issue;
  }

  private ownerOf(repo: RepoState) {
    return this.state.user(repo.owner);
  }

  private association(repo: RepoState, login: string): string {
    return this.reps.authorAssociation(repo, login, this.state.roleOf(repo, login));
  }

  private repoState(repo: Repo): RepoState {
    const state = this.state.repo(repo.owner, repo.name);
    if (!state) throw new Error(`Unknown repository ${repo.fullName}`);
    return state;
  }

  private codeloadUrl(repo: RepoState, sha: string): string {
    const token = randomBytes(20).toString('hex');
    this.codeload.set(token, { repo, sha, expiresAt: Date.now() + CODELOAD_LIFETIME_MS });
    return `${this.url}/_codeload/${repo.fullName}/legacy.tar.gz/${sha}?token=${token}`;
  }

  /** GitHub's codeload: no Authorization header, only the link's short-lived token. */
  private async serveCodeload(url: URL, res: import('node:http').ServerResponse): Promise<boolean> {
    if (!url.pathname.startsWith('/_codeload/')) return false;
    const entry = this.codeload.get(url.searchParams.get('token') ?? '');
    if (!entry || entry.expiresAt < Date.now()) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('404: Not Found');
      return true;
    }
    const prefix = `${entry.repo.owner}-${entry.repo.name}-${entry.sha.slice(0, 7)}`;
    const tar = await entry.repo.git.tarball(entry.sha, prefix);
    res.writeHead(200, {
      'content-type': 'application/x-gzip',
      'content-disposition': `attachment; filename=${prefix}.tar.gz`,
      'content-length': String(tar.length),
      etag: `"${entry.sha}"`,
    });
    res.end(tar);
    return true;
  }
}

function publicRepo(repo: RepoState): Repo {
  const { owner, name, fullName, defaultBranch, dir, id, private: isPrivate, createdAt } = repo;
  return { id, owner, name, fullName, defaultBranch, dir, private: isPrivate, createdAt };
}

function isoNow(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function gitRevParse(dir: string, ref: string): string {
  return execFileSync('git', ['rev-parse', '--verify', ref], { cwd: dir, encoding: 'utf8' }).trim();
}
