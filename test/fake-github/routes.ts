import type { AppAuth } from './app-auth.js';
import { validateCheckRunBody } from './check-run-rules.js';
import type { Representations } from './representations.js';
import { githubError, notFound, type RouteRequest, type RouteResponse, type Router } from './router.js';
import type { CheckRunRecord, FakeState, Installation, Repo, RepoState, User } from './state.js';

export interface RouteContext {
  state: FakeState;
  reps: Representations;
  auth: AppAuth;
  /** The first installation, on the account that owns the App. */
  installation: Installation;
  /** Every installation of the App, the first one included; others are added while the fake runs. */
  installations: Installation[];
  appSlug: string;
  /** The app's bot account, author of everything the app writes. */
  appBot: () => User;
  /** A short-lived, unauthenticated download URL for a tarball (GitHub's codeload). */
  codeloadUrl: (repo: RepoState, sha: string) => string;
  now: () => Date;
}

/**
 * The installation that can act on a repository: the one on the repository owner's account, else
 * the first one, which holds every repository no other installation does.
 */
export function installationOf(installations: readonly Installation[], repo: Pick<Repo, 'owner'>): Installation {
  const owner = repo.owner.toLowerCase();
  return installations.find((installation) => installation.account.login.toLowerCase() === owner) ?? installations[0]!;
}

const REACTIONS = ['+1', '-1', 'laugh', 'confused', 'heart', 'hooray', 'rocket', 'eyes'];

/** Registers every GitHub REST operation the fake serves. Order matters where templates overlap. */
export function registerRoutes(router: Router, ctx: RouteContext): void {
  const { state, reps } = ctx;
  const iso = () => ctx.now().toISOString().replace(/\.\d{3}Z$/, 'Z');

  const repoOf = (req: RouteRequest): RepoState | undefined => state.repo(req.params.owner ?? '', req.params.repo ?? '');
  const ownerOf = (repo: RepoState): User => state.user(repo.owner);
  const association = (repo: RepoState, login: string) => reps.authorAssociation(repo, login, state.roleOf(repo, login));
  const installationById = (id: unknown) => ctx.installations.find((installation) => installation.id === Number(id));
  // GitHub answers 404 to an installation token for a repository outside its installation.
  const withRepo = (fn: (repo: RepoState, req: RouteRequest) => Promise<RouteResponse> | RouteResponse) => (req: RouteRequest) => {
    const repo = repoOf(req);
    if (!repo) return notFound();
    if (req.auth.kind === 'installation' && installationOf(ctx.installations, repo).id !== req.auth.installationId) return notFound();
    return fn(repo, req);
  };
  const ok = (body: unknown, status = 200): RouteResponse => ({ status, body });

  // --- the app itself (JWT) ---
  router.add('GET', '/app', 'app', () => ok(reps.appSummary(ctx.installation.account)));
  router.add('GET', '/app/installations/{installation_id}', 'app', (req) => {
    const installation = installationById(req.params.installation_id);
    return installation ? ok(installationBody(ctx, installation)) : notFound();
  });
  // The App's installations and the repositories an installation can act on (see installationOf).
  router.add('GET', '/app/installations', 'app', () => ok(ctx.installations.map((installation) => installationBody(ctx, installation))));
  router.add('GET', '/installation/repositories', 'installation', (req) => {
    const caller = req.auth.kind === 'installation' ? req.auth.installationId : undefined;
    const repositories = [...state.repos.values()]
      .filter((repo) => installationOf(ctx.installations, repo).id === caller)
      .map((repo) => reps.repository(repo, ownerOf(repo)));
    return ok({ total_count: repositories.length, repository_selection: 'all', repositories });
  });
  // The user a user token belongs to.
  router.add('GET', '/user', 'user', (req) => (req.auth.kind === 'user' ? ok(reps.user(ctx.state.user(req.auth.login))) : notFound()));
  // Which installation can act on a repository (GitHub answers this to the App's JWT).
  router.add('GET', '/repos/{owner}/{repo}/installation', 'app', withRepo((repo) => ok(installationBody(ctx, installationOf(ctx.installations, repo)))));
  router.add('POST', '/app/installations/{installation_id}/access_tokens', 'app', (req) => {
    const installation = installationById(req.params.installation_id);
    if (!installation) return notFound();
    const { token, expiresAt } = ctx.auth.issueToken(installation.id);
    const requested = (req.body as { permissions?: Record<string, string> } | undefined)?.permissions;
    return ok(
      {
        token,
        expires_at: expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        permissions: requested ?? { ...installationBody(ctx, installation).permissions },
        repository_selection: 'all',
      },
      201,
    );
  });

  // --- repositories ---
  router.add('GET', '/repos/{owner}/{repo}', 'installation', withRepo((repo) => ok({
    ...reps.repository(repo, ownerOf(repo)),
    permissions: { admin: false, maintain: false, push: false, triage: false, pull: true },
  })));

  router.add('GET', '/repos/{owner}/{repo}/collaborators/{username}/permission', 'installation', withRepo((repo, req) => {
    const login = req.params.username ?? '';
    const known = state.users.get(login.toLowerCase());
    if (!known) return githubError(404, `${login} is not a user`);
    const role = state.roleOf(repo, login);
    // The legacy `permission` folds maintain into write and triage into read.
    const legacy = role === 'maintain' ? 'write' : role === 'triage' ? 'read' : role;
    return ok({
      permission: legacy,
      role_name: role,
      user: { ...reps.user(known), permissions: reps.permissions(role), role_name: role },
    });
  }));

  router.add('GET', '/repos/{owner}/{repo}/branches/{branch}', 'installation', withRepo(async (repo, req) => {
    const branch = req.params.branch ?? '';
    const sha = await repo.git.resolve(`refs/heads/${branch}`);
    if (!sha) return githubError(404, 'Branch not found');
    return ok({
      name: branch,
      commit: await commitBody(repo, sha),
      _links: { self: `${reps.api}/repos/${repo.fullName}/branches/${branch}`, html: `${reps.api.replace('/api/v3', '')}/${repo.fullName}/tree/${branch}` },
      protected: false,
      protection: { enabled: false, required_status_checks: { enforcement_level: 'off', contexts: [], checks: [] } },
      protection_url: `${reps.api}/repos/${repo.fullName}/branches/${branch}/protection`,
    });
  }));

  // Registered before GET commits/{ref}, whose {ref} may contain slashes.
  router.add('GET', '/repos/{owner}/{repo}/commits/{ref}/check-runs', 'installation', withRepo(async (repo, req) => {
    const sha = await repo.git.resolve(req.params.ref ?? '');
    if (!sha) return githubError(422, `No commit found for SHA: ${req.params.ref}`);
    let runs = [...state.checkRuns.values()].filter((r) => r.repo === repo.fullName.toLowerCase() && r.headSha === sha);
    const name = req.query.get('check_name');
    if (name) runs = runs.filter((r) => r.name === name);
    const status = req.query.get('status');
    if (status) runs = runs.filter((r) => r.status === status);
    runs.sort((a, b) => b.id - a.id);
    if ((req.query.get('filter') ?? 'latest') === 'latest') {
      const seen = new Set<string>();
      runs = runs.filter((r) => (seen.has(r.name) ? false : (seen.add(r.name), true)));
    }
    const page = paginate(runs, req, reps.api);
    return { status: 200, headers: page.headers, body: { total_count: runs.length, check_runs: page.items.map((r) => reps.checkRun(repo, r, ctx.installation.account)) } };
  }));

  router.add('GET', '/repos/{owner}/{repo}/commits/{ref}', 'installation', withRepo(async (repo, req) => {
    const sha = await repo.git.resolve(req.params.ref ?? '');
    if (!sha) return githubError(422, `No commit found for SHA: ${req.params.ref}`);
    return ok({ ...(await commitBody(repo, sha)), files: [], stats: { total: 0, additions: 0, deletions: 0 } });
  }));

  router.add('GET', '/repos/{owner}/{repo}/contents/{path}', 'installation', withRepo(async (repo, req) => {
    const ref = req.query.get('ref') || repo.defaultBranch;
    const sha = await repo.git.resolve(ref);
    if (!sha) return githubError(404, `No commit found for the ref ${ref}`);
    const path = (req.params.path ?? '').replace(/^\/+|\/+$/g, '');
    const object = await repo.git.objectAt(sha, path);
    if (!object) return notFound();
    const entry = (type: 'file' | 'dir', p: string, objectSha: string, size: number) => {
      const url = `${reps.api}/repos/${repo.fullName}/contents/${p}?ref=${encodeURIComponent(ref)}`;
      const html = `${reps.api.replace('/api/v3', '')}/${repo.fullName}/${type === 'file' ? 'blob' : 'tree'}/${ref}/${p}`;
      const git = `${reps.api}/repos/${repo.fullName}/git/${type === 'file' ? 'blobs' : 'trees'}/${objectSha}`;
      return {
        type,
        size,
        name: p.split('/').pop() ?? p,
        path: p,
        sha: objectSha,
        url,
        git_url: git,
        html_url: html,
        download_url: type === 'file' ? `${reps.api.replace('/api/v3', '')}/_raw/${repo.fullName}/${ref}/${p}` : null,
        _links: { self: url, git, html },
      };
    };
    if (object.type === 'blob') {
      const content = await repo.git.readBlob(object.sha);
      // GitHub wraps base64 content at 60 characters per line.
      const base64 = content.toString('base64').replace(/(.{60})/g, '$1\n');
      return ok({ ...entry('file', path, object.sha, content.length), content: base64, encoding: 'base64' });
    }
    const children = await repo.git.listTree(sha, path);
    return ok(children.map((c) => entry(c.type === 'tree' ? 'dir' : 'file', c.path, c.sha, c.size)));
  }));

  router.add('GET', '/repos/{owner}/{repo}/tarball/{ref}', 'installation', withRepo(async (repo, req) => {
    const ref = req.params.ref || repo.defaultBranch;
    const sha = await repo.git.resolve(ref);
    if (!sha) return notFound();
    return { status: 302, headers: { location: ctx.codeloadUrl(repo, sha) }, body: '' };
  }));

  // --- issues and pull requests ---
  router.add('GET', '/repos/{owner}/{repo}/issues/{issue_number}', 'installation', withRepo((repo, req) => {
    const issue = state.issuesOf(repo).get(Number(req.params.issue_number));
    if (!issue) return notFound();
    const body = reps.issue(repo, ownerOf(repo), issue, association(repo, issue.user.login));
    body.comments = [...state.comments.values()].filter((c) => c.repo === repo.fullName.toLowerCase() && c.issueNumber === issue.number).length;
    return ok(body);
  }));

  router.add('GET', '/repos/{owner}/{repo}/pulls/{pull_number}', 'installation', withRepo((repo, req) => {
    const issue = state.issuesOf(repo).get(Number(req.params.pull_number));
    if (!issue?.pull) return notFound();
    return ok(reps.pullRequest(repo, ownerOf(repo), issue, association(repo, issue.user.login)));
  }));

  router.add('GET', '/repos/{owner}/{repo}/pulls/{pull_number}/reviews', 'installation', withRepo((repo, req) => {
    const number = Number(req.params.pull_number);
    if (!state.issuesOf(repo).get(number)?.pull) return notFound();
    const reviews = state.reviewsOf(repo, number).filter((r) => r.state !== 'PENDING');
    const page = paginate(reviews, req, reps.api);
    return { status: 200, headers: page.headers, body: page.items.map((r) => reps.review(repo, number, r, association(repo, r.user.login))) };
  }));

  router.add('GET', '/repos/{owner}/{repo}/pulls/{pull_number}/files', 'installation', withRepo(async (repo, req) => {
    const issue = state.issuesOf(repo).get(Number(req.params.pull_number));
    if (!issue?.pull) return notFound();
    const baseSha = (await repo.git.resolve(`refs/heads/${issue.pull.baseRef}`)) ?? issue.pull.baseSha;
    const base = await repo.git.mergeBase(baseSha, issue.pull.headSha);
    const head = issue.pull.headSha;
    const [entries, stats] = await Promise.all([repo.git.diff(base, head), repo.git.numstat(base, head)]);
    const files = await Promise.all(
      entries.map(async (e) => {
        const blob = await repo.git.objectAt(e.status === 'removed' ? base : head, e.filename);
        const stat = stats.get(e.filename) ?? { additions: 0, deletions: 0 };
        const rawBase = `${reps.api.replace('/api/v3', '')}/${repo.fullName}`;
        return {
          sha: blob?.sha ?? null,
          filename: e.filename,
          status: e.status,
          additions: stat.additions,
          deletions: stat.deletions,
          changes: stat.additions + stat.deletions,
          blob_url: `${rawBase}/blob/${head}/${e.filename}`,
          raw_url: `${rawBase}/raw/${head}/${e.filename}`,
          contents_url: `${reps.api}/repos/${repo.fullName}/contents/${e.filename}?ref=${head}`,
          ...(e.previousFilename ? { previous_filename: e.previousFilename } : {}),
        };
      }),
    );
    const page = paginate(files, req, reps.api);
    return { status: 200, headers: page.headers, body: page.items };
  }));

  router.add('GET', '/repos/{owner}/{repo}/issues/{issue_number}/comments', 'installation', withRepo((repo, req) => {
    const number = Number(req.params.issue_number);
    if (!state.issuesOf(repo).has(number)) return notFound();
    const comments = [...state.comments.values()].filter((c) => c.repo === repo.fullName.toLowerCase() && c.issueNumber === number);
    const page = paginate(comments, req, reps.api);
    return {
      status: 200,
      headers: page.headers,
      body: page.items.map((c) => reps.comment(repo, c, association(repo, c.user.login), state.reactions.filter((r) => r.commentId === c.id))),
    };
  }));

  router.add('POST', '/repos/{owner}/{repo}/issues/{issue_number}/comments', 'installation', withRepo((repo, req) => {
    const number = Number(req.params.issue_number);
    if (!state.issuesOf(repo).has(number)) return notFound();
    const text = (req.body as { body?: unknown } | undefined)?.body;
    if (typeof text !== 'string' || text === '') {
      return githubError(422, 'Validation Failed', { errors: [{ resource: 'IssueComment', field: 'body', code: 'missing_field' }] });
    }
    if (text.length > 65536) {
      return githubError(422, 'Validation Failed', { errors: [{ resource: 'IssueComment', field: 'body', code: 'custom', message: 'Body is too long (maximum is 65536 characters)' }] });
    }
    const now = iso();
    const comment = { id: state.ids.take('comment', 1_000_000), issueNumber: number, user: ctx.appBot(), body: text, createdAt: now, updatedAt: now, repo: repo.fullName.toLowerCase() };
    state.comments.set(comment.id, comment);
    return { status: 201, headers: { location: `${reps.api}/repos/${repo.fullName}/issues/comments/${comment.id}` }, body: reps.comment(repo, comment, 'NONE', []) };
  }));

  router.add('POST', '/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions', 'installation', withRepo((repo, req) => {
    const comment = state.comments.get(Number(req.params.comment_id));
    if (!comment || comment.repo !== repo.fullName.toLowerCase()) return notFound();
    const content = (req.body as { content?: unknown } | undefined)?.content;
    if (typeof content !== 'string' || !REACTIONS.includes(content)) {
      return githubError(422, 'Validation Failed', { errors: [{ resource: 'Reaction', field: 'content', code: 'invalid' }] });
    }
    const bot = ctx.appBot();
    const existing = state.reactions.find((r) => r.commentId === comment.id && r.user.id === bot.id && r.content === content);
    if (existing) return ok(reps.reaction(existing), 200);
    const reaction = { id: state.ids.take('reaction', 3_000_000), commentId: comment.id, user: bot, content, createdAt: iso() };
    state.reactions.push(reaction);
    return ok(reps.reaction(reaction), 201);
  }));

  // --- check runs ---
  router.add('POST', '/repos/{owner}/{repo}/check-runs', 'installation', withRepo(async (repo, req) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const errors = validateCheckRunBody(body, true);
    if (errors.length > 0) return githubError(422, 'Validation Failed', { errors });
    if (!(await repo.git.isCommit(String(body.head_sha)))) {
      return githubError(422, 'Validation Failed', { errors: [{ resource: 'CheckRun', field: 'head_sha', code: 'invalid', message: `No commit found for SHA: ${String(body.head_sha)}` }] });
    }
    const run: CheckRunRecord = {
      id: state.ids.take('check_run', 9_000_000),
      repo: repo.fullName.toLowerCase(),
      name: String(body.name),
      headSha: String(body.head_sha),
      status: 'queued',
      conclusion: null,
      externalId: null,
      detailsUrl: null,
      startedAt: null,
      completedAt: null,
      output: { title: null, summary: null, text: null, annotationsCount: 0 },
      actions: [],
      history: [],
    };
    applyCheckRunBody(run, body, iso());
    // GitHub stamps started_at when the run is created.
    run.startedAt ??= iso();
    state.checkRuns.set(run.id, run);
    return ok(reps.checkRun(repo, run, ctx.installation.account), 201);
  }));

  router.add('PATCH', '/repos/{owner}/{repo}/check-runs/{check_run_id}', 'installation', withRepo((repo, req) => {
    const run = state.checkRuns.get(Number(req.params.check_run_id));
    if (!run || run.repo !== repo.fullName.toLowerCase()) return notFound();
    const body = (req.body ?? {}) as Record<string, unknown>;
    const errors = validateCheckRunBody(body, false);
    if (errors.length > 0) return githubError(422, 'Validation Failed', { errors });
    applyCheckRunBody(run, body, iso());
    return ok(reps.checkRun(repo, run, ctx.installation.account));
  }));

  router.add('GET', '/repos/{owner}/{repo}/check-runs/{check_run_id}', 'installation', withRepo((repo, req) => {
    const run = state.checkRuns.get(Number(req.params.check_run_id));
    if (!run || run.repo !== repo.fullName.toLowerCase()) return notFound();
    return ok(reps.checkRun(repo, run, ctx.installation.account));
  }));

  async function commitBody(repo: RepoState, sha: string): Promise<Record<string, unknown>> {
    const info = await repo.git.commitInfo(sha);
    const person = { name: 'Fake GitHub', email: 'noreply@example.com', date: info.date };
    const url = `${reps.api}/repos/${repo.fullName}/commits/${sha}`;
    return {
      sha,
      node_id: reps.nodeId('Commit', parseInt(sha.slice(0, 8), 16)),
      url,
      html_url: `${reps.api.replace('/api/v3', '')}/${repo.fullName}/commit/${sha}`,
      comments_url: `${url}/comments`,
      commit: {
        url: `${reps.api}/repos/${repo.fullName}/git/commits/${sha}`,
        author: person,
        committer: person,
        message: info.message,
        tree: { sha: info.tree, url: `${reps.api}/repos/${repo.fullName}/git/trees/${info.tree}` },
        comment_count: 0,
        verification: { verified: false, reason: 'unsigned', signature: null, payload: null, verified_at: null },
      },
      author: null,
      committer: null,
      parents: info.parents.map((p) => ({ sha: p, url: `${reps.api}/repos/${repo.fullName}/commits/${p}`, html_url: `${reps.api.replace('/api/v3', '')}/${repo.fullName}/commit/${p}` })),
    };
  }
}

/** Applies a create or update body as GitHub does, and keeps it in the run's history. */
function applyCheckRunBody(run: CheckRunRecord, body: Record<string, unknown>, now: string): void {
  run.history.push(structuredClone(body));
  if (typeof body.name === 'string') run.name = body.name;
  if (typeof body.external_id === 'string') run.externalId = body.external_id;
  if (typeof body.details_url === 'string') run.detailsUrl = body.details_url;
  if (typeof body.started_at === 'string') run.startedAt = body.started_at;
  if (typeof body.status === 'string') run.status = body.status as CheckRunRecord['status'];
  if (typeof body.conclusion === 'string') {
    // "Providing conclusion will automatically set the status parameter to completed."
    run.conclusion = body.conclusion;
    run.status = 'completed';
  }
  if (run.status === 'completed') {
    run.completedAt = typeof body.completed_at === 'string' ? body.completed_at : (run.completedAt ?? now);
  }
  const output = body.output as { title?: string; summary?: string; text?: string; annotations?: unknown[] } | undefined;
  if (output) {
    run.output.title = output.title ?? run.output.title;
    run.output.summary = output.summary ?? run.output.summary;
    if (output.text !== undefined) run.output.text = output.text;
    // Annotations append across updates.
    run.output.annotationsCount += output.annotations?.length ?? 0;
  }
  if (Array.isArray(body.actions)) run.actions = body.actions as CheckRunRecord['actions'];
}

function installationBody(ctx: RouteContext, installation: Installation) {
  const account = installation.account;
  const api = ctx.reps.api;
  return {
    id: installation.id,
    account: ctx.reps.user(account),
    repository_selection: 'all',
    access_tokens_url: `${api}/app/installations/${installation.id}/access_tokens`,
    repositories_url: `${api}/installation/repositories`,
    html_url: `${api.replace('/api/v3', '')}/settings/installations/${installation.id}`,
    app_id: ctx.auth.appId,
    app_slug: ctx.appSlug,
    target_id: account.id,
    target_type: account.type === 'Organization' ? 'Organization' : 'User',
    permissions: { checks: 'write', contents: 'read', issues: 'write', pull_requests: 'write', metadata: 'read' },
    events: ['check_run', 'issue_comment', 'pull_request', 'pull_request_review', 'push'],
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
    single_file_name: null,
    has_multiple_single_files: false,
    single_file_paths: [],
    suspended_by: null,
    suspended_at: null,
  };
}

/** GitHub's page/per_page pagination with a Link header, so octokit.paginate works. */
function paginate<T>(items: T[], req: RouteRequest, apiBase: string): { items: T[]; headers: Record<string, string> } {
  const perPage = Math.min(Math.max(Number(req.query.get('per_page')) || 30, 1), 100);
  const page = Math.max(Number(req.query.get('page')) || 1, 1);
  const slice = items.slice((page - 1) * perPage, page * perPage);
  const headers: Record<string, string> = {};
  const last = Math.max(Math.ceil(items.length / perPage), 1);
  if (page < last) {
    const link = (p: number) => {
      const q = new URLSearchParams(req.query);
      q.set('page', String(p));
      q.set('per_page', String(perPage));
      return `<${apiBase}${req.path}?${q}>`;
    };
    headers.link = `${link(page + 1)}; rel="next", ${link(last)}; rel="last"`;
  }
  return { items: slice, headers };
}
