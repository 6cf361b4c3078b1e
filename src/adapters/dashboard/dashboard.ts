/**
 * The dashboard: server-rendered pages beside the webhooks and the API, as one node:http handler
 * (`options.addHandler`). Runs (`/`), a run (`/runs/<id>`, the check run's Details link), Start a
 * run (`/start`), Repositories (`/repositories`), task badges (`/badge/<owner>/<repo>/<task>.svg`),
 * and "Sign in with GitHub" (`/login`, `/login/callback`, `/logout`). It returns false for every
 * other path.
 *
 * A signed-in person sees and does exactly what the same person may through comments and the
 * API: pages list only runs of repositories they can read (a run of another one is a 404, like a
 * missing one), buttons appear where the policy would allow them, and pressing one calls the same
 * use case as the comment. Every form carries the session's CSRF token and must come from this
 * origin. The session cookie is read here and by the API's reads (GET), never by the gateway.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { RunButtons, TaskList } from '../../core/run-service/run-views.js';
import type { CancelOutcome, PinOutcome, RequestOutcome } from '../../core/run-service/run-service.js';
import { runStates, type RepoRef, type Requester, type Run, type RunState } from '../../core/runs/run.js';
import type { RepoVisibility } from '../../ports/repo-host.js';
import type { RunLogs, RunRecords } from '../../ports/run-store.js';
import { createRunRequestSchema, pinRunRequestReader } from '../http/api-schemas.js';
import { ApiError, readBody, requestUrl, type ApiActor } from '../http/http-io.js';
import { parse, type RunReads, type RunUseCases } from '../http/run-operations.js';
import { dashboardCss, dashboardJs } from './assets.js';
import { GithubSignIn, SignInError, type GithubSignInConfig } from './github-sign-in.js';
import type { Html } from './html.js';
import {
  badgeSvg,
  messagePage,
  repositoriesPage,
  runPage,
  runsPage,
  signInPage,
  startPage,
  type PageFrame,
  type RepoRow,
  type RunsFilter,
  type StartPageData,
} from './pages.js';
import { CookieJar, csrfMatches, pkcePair, type Session } from './session.js';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/** The run service's use cases the buttons call. */
export interface DashboardUseCases {
  cancel(input: { requester: Requester; scope: { kind: 'run'; runId: string } }): Promise<CancelOutcome>;
  rerun(input: { requester: Requester; run: Run; headSha: string }): Promise<RequestOutcome>;
  pin(input: { requester: Requester; runId: string; durationMs: number }): Promise<PinOutcome>;
}

export interface DashboardDeps {
  store: RunRecords & RunLogs;
  reads: RunReads;
  views: { buttons(requester: Requester, run: Run): Promise<RunButtons>; tasks(requester: Requester, repo: RepoRef, target: { kind: 'default_branch' } | { kind: 'pull_request'; number: number }): Promise<TaskList> };
  /** Starting runs: the API's door to the run service (same policy as `/run`). */
  starts: Pick<RunUseCases, 'create'>;
  service: DashboardUseCases;
  /** The repositories the App is installed on. */
  repositories(): Promise<RepoRef[]>;
  visibility(repo: RepoRef): Promise<RepoVisibility>;
  /** Unset: sign-in is not configured, and the pages say so. */
  signIn?: GithubSignInConfig;
  sessionKey: Buffer;
  /** The app's address as people reach it (PUBLIC_URL). */
  publicUrl: string;
  gatewayUrl: string;
  githubWebUrl: string;
  log: Pick<Logger, 'error' | 'warn'>;
  fetch?: typeof fetch;
  now?: () => number;
}

/** How many runs the runs page looks at (the run store's cap per query), and shows. */
const listWindow = 500;
const shown = 100;

const securityHeaders = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
};

class PageError extends Error {
  constructor(
    readonly status: number,
    readonly heading: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Dashboard {
  handler: HttpHandler;
  /** The signed-in person of a request, for the API's reads; null without a valid session. */
  sessionActor(req: IncomingMessage): ApiActor | null;
}

export function createDashboard(deps: DashboardDeps): Dashboard {
  const jar = new CookieJar(deps.sessionKey, deps.publicUrl.startsWith('https:'), deps.now);
  const signIn = deps.signIn ? new GithubSignIn(deps.signIn, deps.fetch) : null;
  const repoNames = (runs: Run[]) => [...new Set(runs.map((run) => `${run.repo.owner}/${run.repo.name}`))].sort();

  function send(res: ServerResponse, status: number, page: Html, headers: Record<string, string | string[]> = {}): void {
    const body = page.text;
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'no-store',
      ...securityHeaders,
      ...headers,
    });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }

  function redirect(res: ServerResponse, location: string, cookies: string[] = []): void {
    res.writeHead(303, { location, 'cache-control': 'no-store', ...(cookies.length > 0 ? { 'set-cookie': cookies } : {}) }).end();
  }

  function frameOf(session: Session, title: string): PageFrame {
    return { title, login: session.login, csrf: session.csrf };
  }

  const userOf = (session: Session): Requester => ({ kind: 'user', login: session.login });

  /** A local path to come back to after signing in; anything else goes to the runs. */
  function localPath(value: string | null): string {
    return value && /^\/(?![/\\])[^\s]*$/.test(value) ? value : '/';
  }

  /** A form's fields, once its CSRF token and origin are checked. */
  async function form(req: IncomingMessage, session: Session): Promise<URLSearchParams> {
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null') {
      const host = req.headers.host;
      const allowed = [new URL(deps.publicUrl).origin, ...(host ? [`http://${host}`, `https://${host}`] : [])];
      if (!allowed.includes(origin)) throw new PageError(403, 'Refused', 'this form was sent from another site, so nothing was done.');
    }
    let fields: URLSearchParams;
    try {
      fields = new URLSearchParams((await readBody(req)).toString('utf8'));
    } catch (error) {
      if (error instanceof ApiError) throw new PageError(error.status, 'Refused', error.message);
      throw error;
    }
    if (!csrfMatches(session, fields.get('csrf') ?? undefined)) {
      throw new PageError(403, 'Refused', 'the form’s security token is missing or out of date (did you sign in again elsewhere?); reload the page and try again.');
    }
    return fields;
  }

  async function readableRun(session: Session, id: string): Promise<Run> {
    const run = await deps.store.getRun(id);
    if (!run || !(await deps.reads.canRead(userOf(session), run.repo))) throw new PageError(404, 'Not found', `there is no run ${id}.`);
    return run;
  }

  // ─── Pages ────────────────────────────────────────────────────────────────────────────────

  async function runsList(req: IncomingMessage, res: ServerResponse, url: URL, session: Session): Promise<void> {
    const filter = runsFilter(url);
    const user = userOf(session);
    const byTask = (run: Run) => (!filter.task || run.task === filter.task) && (!filter.requester || run.requestedBy.toLowerCase() === filter.requester.toLowerCase());
    const [window, stateWindow, running] = await Promise.all([
      deps.store.listRuns({ ...(filter.repo ? { repo: filter.repo } : {}), limit: listWindow }),
      filter.state ? deps.store.listRuns({ state: filter.state, ...(filter.repo ? { repo: filter.repo } : {}), limit: listWindow }) : null,
      deps.store.listRuns({ state: 'running', ...(filter.repo ? { repo: filter.repo } : {}), limit: listWindow }),
    ]);
    const visible = (await deps.reads.readable(user, window)).filter(byTask);
    const counts = Object.fromEntries(runStates.map((state) => [state, 0])) as Record<RunState, number>;
    for (const run of visible) counts[run.state] += 1;
    const rows = stateWindow ? (await deps.reads.readable(user, stateWindow)).filter(byTask) : visible;
    send(
      res,
      200,
      runsPage(frameOf(session, 'Runs'), {
        runs: rows.slice(0, shown),
        counts,
        running: (await deps.reads.readable(user, running)).filter(byTask),
        filter,
        window: listWindow,
        repos: repoNames(visible),
      }),
    );
  }

  async function showRun(res: ServerResponse, session: Session, run: Run, notice: { kind: 'ok' | 'error'; text: string } | null, status = 200): Promise<void> {
    const [buttons, pipeline] = await Promise.all([deps.views.buttons(userOf(session), run), pipelineOf(run)]);
    send(res, status, runPage(frameOf(session, `${run.task} · ${run.id}`), { run, pipeline, buttons, gatewayUrl: deps.gatewayUrl, githubWebUrl: deps.githubWebUrl, notice }));
  }

  /** The runs of the run's request: those it needs and those that need it, at its commit. */
  async function pipelineOf(run: Run): Promise<Run[]> {
    if (run.needs.length === 0 && run.number === null) {
      const recent = await deps.store.listRuns({ repo: `${run.repo.owner}/${run.repo.name}`, limit: 200 });
      if (!recent.some((other) => other.needs.includes(run.id))) return [run];
      return connected(run, recent);
    }
    const recent = await deps.store.listRuns({ repo: `${run.repo.owner}/${run.repo.name}`, ...(run.number !== null ? { number: run.number } : {}), limit: 200 });
    return connected(run, recent);
  }

  async function buttonPressed(req: IncomingMessage, res: ServerResponse, session: Session, id: string, action: string): Promise<void> {
    const fields = await form(req, session);
    const run = await readableRun(session, id);
    const requester = userOf(session);
    const refused = (reason: string) => showRun(res, session, run, { kind: 'error', text: reason }, 422);
    switch (action) {
      case 'cancel': {
        const outcome = await deps.service.cancel({ requester, scope: { kind: 'run', runId: run.id } });
        if (outcome.kind === 'refused') return refused(outcome.reason);
        if (outcome.kind === 'already_ended') return refused(`the run had already ended (${outcome.run.state.replace('_', ' ')}).`);
        return redirect(res, `/runs/${encodeURIComponent(run.id)}?done=cancelled`);
      }
      case 'rerun': {
        const outcome = await deps.service.rerun({ requester, run, headSha: run.sha });
        if (outcome.kind === 'refused') return refused(outcome.reason);
        if (outcome.kind === 'waiting') return showRun(res, session, run, { kind: 'ok', text: `Waiting: ${outcome.reason}` }, 202);
        if (outcome.kind !== 'queued') return refused('the run was not started.');
        const first = outcome.runs.find((r) => r.task === run.task) ?? outcome.runs[0];
        return redirect(res, first ? `/runs/${encodeURIComponent(first.id)}?done=started` : `/runs/${encodeURIComponent(run.id)}`);
      }
      case 'pin': {
        let durationMs: number;
        try {
          durationMs = parse(pinRunRequestReader, { duration: fields.get('duration') ?? '' }).duration;
        } catch (error) {
          return refused(error instanceof Error ? error.message : String(error));
        }
        const outcome = await deps.service.pin({ requester, runId: run.id, durationMs });
        if (outcome.kind !== 'pinned') return refused(outcome.reason);
        return redirect(res, `/runs/${encodeURIComponent(run.id)}?done=pinned`);
      }
      default:
        throw new PageError(404, 'Not found', 'there is no such button.');
    }
  }

  async function readableRepos(session: Session): Promise<RepoRef[]> {
    const repos = await deps.repositories();
    const allowed = await Promise.all(repos.map((repo) => deps.reads.canRead(userOf(session), repo)));
    return repos.filter((_, i) => allowed[i]).sort((a, b) => `${a.owner}/${a.name}`.localeCompare(`${b.owner}/${b.name}`));
  }

  async function start(req: IncomingMessage, res: ServerResponse, url: URL, session: Session): Promise<void> {
    const post = req.method === 'POST';
    const fields = post ? await form(req, session) : url.searchParams;
    const repos = await readableRepos(session);
    const names = repos.map((repo) => `${repo.owner}/${repo.name}`);
    const repoName = fields.get('repo') || null;
    const ref = (fields.get('ref') ?? '').trim();
    const params: Record<string, string> = {};
    for (const [key, value] of fields) if (key.startsWith('param.') && value !== '') params[key.slice('param.'.length)] = value;
    const data: StartPageData = { repos: names, repo: null, ref, tasks: null, task: null, params, problem: null, field: null };
    const repo = repoName ? repos.find((r) => `${r.owner}/${r.name}` === repoName) : undefined;
    if (repoName && !repo) {
      data.problem = `the App is not installed on ${repoName}, or you cannot read it.`;
      return send(res, post ? 404 : 200, startPage(frameOf(session, 'Start a run'), data));
    }
    if (repo) {
      data.repo = repoName;
      const pull = /^pull\/(\d+)$/.exec(ref);
      if (ref !== '' && !pull) {
        data.problem = `ref \`${ref}\` is neither pull/<number> nor empty (the default branch); other branches are not reviewed and do not run.`;
        return send(res, 422, startPage(frameOf(session, 'Start a run'), data));
      }
      const listed = await deps.views.tasks(userOf(session), repo, pull ? { kind: 'pull_request', number: Number(pull[1]) } : { kind: 'default_branch' });
      if (listed.kind === 'tasks') {
        data.tasks = listed.manifest;
        const taskName = fields.get('task') || null;
        data.task = taskName ? (listed.manifest.tasks.find((task) => task.name === taskName) ?? null) : null;
        if (taskName && !data.task) data.problem = `there is no task ${taskName} at ${listed.sha.slice(0, 12)}.`;
      } else {
        data.problem = taskProblem(listed);
      }
    }
    if (!post || !repo) return send(res, 200, startPage(frameOf(session, 'Start a run'), data));

    const actor: ApiActor = { kind: 'user', name: session.login };
    try {
      const input = parse(createRunRequestSchema, { repo: repoName, ...(ref ? { ref } : {}), ...(fields.get('task') ? { task: fields.get('task') } : {}), params });
      const outcome = await deps.starts.create(input, actor);
      switch (outcome.kind) {
        case 'queued': {
          const first = outcome.runs.find((r) => r.task === fields.get('task')) ?? outcome.runs[0];
          return redirect(res, first ? `/runs/${encodeURIComponent(first.id)}?done=started` : '/');
        }
        case 'waiting':
          data.problem = `Not started yet: ${outcome.reason}`;
          return send(res, 202, startPage(frameOf(session, 'Start a run'), data));
        case 'refused':
        case 'not_found':
          data.problem = `Refused: ${outcome.reason}`;
          data.field = paramNamed(outcome.reason);
          return send(res, 422, startPage(frameOf(session, 'Start a run'), data));
      }
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      data.problem = `Refused: ${error.message}`;
      data.field = error.field ?? null;
      return send(res, 422, startPage(frameOf(session, 'Start a run'), data));
    }
  }

  async function repositories(res: ServerResponse, session: Session): Promise<void> {
    const repos = await readableRepos(session);
    const rows: RepoRow[] = await Promise.all(
      repos.map(async (repo): Promise<RepoRow> => {
        const name = `${repo.owner}/${repo.name}`;
        const [listed, recent] = await Promise.all([deps.views.tasks(userOf(session), repo, { kind: 'default_branch' }), deps.store.listRuns({ repo: name, limit: 200 })]);
        if (listed.kind !== 'tasks') return { name, tasks: [], problem: taskProblem(listed) };
        return {
          name,
          problem: null,
          tasks: listed.manifest.tasks.map((task) => ({
            name: task.name,
            description: task.description ?? null,
            last: recent.find((run) => run.task === task.name) ?? null,
            badge: `${deps.publicUrl}/badge/${encodeURIComponent(repo.owner)}/${encodeURIComponent(repo.name)}/${encodeURIComponent(task.name)}.svg`,
          })),
        };
      }),
    );
    send(res, 200, repositoriesPage(frameOf(session, 'Repositories'), rows));
  }

  /** A task's badge: anyone for a public repository; for a private one, whoever can read it (404 for others). */
  async function badge(res: ServerResponse, session: Session | null, owner: string, name: string, task: string): Promise<void> {
    const recent = await deps.store.listRuns({ repo: `${owner}/${name}`, limit: 200 });
    const repo = recent[0]?.repo;
    const visibility = repo ? await deps.visibility(repo) : null;
    const allowed = repo !== undefined && (visibility === 'public' || (session !== null && (await deps.reads.canRead(userOf(session), repo))));
    if (!allowed) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...securityHeaders }).end('not found\n');
      return;
    }
    const last = recent.find((run) => run.task === task);
    const svg = badgeSvg(task, last?.state ?? 'never run');
    res
      .writeHead(200, {
        'content-type': 'image/svg+xml; charset=utf-8',
        'cache-control': visibility === 'public' ? 'public, max-age=60' : 'private, no-store',
        ...securityHeaders,
      })
      .end(svg);
  }

  // ─── Sign-in ──────────────────────────────────────────────────────────────────────────────

  function beginSignIn(res: ServerResponse, url: URL): void {
    if (!signIn) {
      return send(res, 503, messagePage({ title: 'Sign-in', login: null, csrf: null }, 'Sign-in is not set up', 'this deployment has no GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET, so nobody can sign in to the dashboard.'));
    }
    const { verifier, challenge } = pkcePair();
    const state = randomBytes(24).toString('base64url');
    const cookie = jar.signInCookie({ state, verifier, returnTo: localPath(url.searchParams.get('return')), expires: (deps.now ?? Date.now)() + 10 * 60 * 1000 });
    redirect(res, signIn.authorizeUrl(state, challenge), [cookie]);
  }

  async function finishSignIn(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const attempt = jar.signIn(req);
    const clear = jar.clear(jar.signInName);
    const fail = (why: string) => send(res, 400, signInPage(attempt?.returnTo ?? '/', why), { 'set-cookie': clear });
    if (!signIn) return fail('sign-in is not set up on this deployment.');
    if (url.searchParams.get('error')) return fail(`GitHub did not sign you in: ${url.searchParams.get('error_description') ?? url.searchParams.get('error')}.`);
    const code = url.searchParams.get('code');
    if (!attempt || !code || url.searchParams.get('state') !== attempt.state) return fail('this sign-in was not started here, or took longer than ten minutes; sign in again.');
    try {
      const login = await signIn.login(code, attempt.verifier);
      redirect(res, attempt.returnTo, [clear, jar.sessionCookie(jar.newSession(login))]);
    } catch (error) {
      if (error instanceof SignInError) return fail(error.message);
      throw error;
    }
  }

  // ─── Routing ──────────────────────────────────────────────────────────────────────────────

  async function route(req: IncomingMessage, res: ServerResponse, url: URL, parts: string[]): Promise<boolean> {
    const method = req.method ?? 'GET';
    const get = method === 'GET' || method === 'HEAD';
    const path = url.pathname;
    if (path === '/dashboard/assets/dashboard.css' || path === '/dashboard/assets/dashboard.js') {
      if (!get) return false;
      const css = path.endsWith('.css');
      res.writeHead(200, { 'content-type': css ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=300', 'x-content-type-options': 'nosniff' });
      res.end(method === 'HEAD' ? undefined : css ? dashboardCss : dashboardJs);
      return true;
    }
    const session = jar.session(req);
    if (path === '/login' && get) return beginSignIn(res, url), true;
    if (path === '/login/callback' && get) return await finishSignIn(req, res, url), true;
    if (path === '/logout' && method === 'POST') {
      if (session) await form(req, session);
      redirect(res, '/', [jar.clear(jar.sessionName)]);
      return true;
    }
    if (parts[0] === 'badge' && parts.length === 4 && get && parts[3]!.endsWith('.svg')) {
      await badge(res, session, parts[1]!, parts[2]!, parts[3]!.slice(0, -'.svg'.length));
      return true;
    }
    const page = path === '/' || path === '/runs' || path === '/start' || path === '/repositories' || (parts[0] === 'runs' && (parts.length === 2 || parts.length === 3));
    if (!page) return false;
    if (!session) {
      if (!get) throw new PageError(403, 'Refused', 'you are not signed in (or your session ended); sign in and try again.');
      send(res, 200, signInPage(path + url.search, null));
      return true;
    }
    if ((path === '/' || path === '/runs') && get) return await runsList(req, res, url, session), true;
    if (path === '/start' && (get || method === 'POST')) return await start(req, res, url, session), true;
    if (path === '/repositories' && get) return await repositories(res, session), true;
    if (parts[0] === 'runs' && parts.length === 2 && get) {
      const run = await readableRun(session, parts[1]!);
      await showRun(res, session, run, doneNotice(url.searchParams.get('done')));
      return true;
    }
    if (parts[0] === 'runs' && parts.length === 3 && method === 'POST') {
      await buttonPressed(req, res, session, parts[1]!, parts[2]!);
      return true;
    }
    throw new PageError(405, 'Not allowed', `${method} is not allowed here.`);
  }

  const handler: HttpHandler = async (req, res) => {
    const url = requestUrl(req);
    let parts: string[];
    try {
      parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
    } catch {
      return false;
    }
    try {
      return await route(req, res, url, parts);
    } catch (error) {
      const session = jar.session(req);
      const frame: PageFrame = { title: 'Error', login: session?.login ?? null, csrf: session?.csrf ?? null };
      if (error instanceof PageError) {
        send(res, error.status, messagePage({ ...frame, title: error.heading }, error.heading, error.message));
      } else {
        deps.log.error({ err: error, method: req.method, path: url.pathname }, 'dashboard request failed');
        if (res.headersSent) res.destroy();
        else send(res, 500, messagePage(frame, 'Something failed', 'the page could not be made; the failure is logged. Try again in a moment.'));
      }
      return true;
    }
  };

  return {
    handler,
    sessionActor(req) {
      const session = jar.session(req);
      return session ? { kind: 'user', name: session.login } : null;
    },
  };
}

function runsFilter(url: URL): RunsFilter {
  const get = (key: string) => url.searchParams.get(key)?.trim() || undefined;
  const state = get('state');
  const repo = get('repo');
  return {
    ...(repo && /^[^/\s]+\/[^/\s]+$/.test(repo) ? { repo } : {}),
    ...(state && (runStates as readonly string[]).includes(state) ? { state: state as RunState } : {}),
    ...(get('task') ? { task: get('task')! } : {}),
    ...(get('requester') ? { requester: get('requester')!.replace(/^@/, '') } : {}),
  };
}

/** The runs connected to `run` through `needs`, at its commit, each after the runs it needs. */
function connected(run: Run, recent: Run[]): Run[] {
  const sameCommit = recent.filter((other) => other.sha === run.sha);
  if (!sameCommit.some((other) => other.id === run.id)) sameCommit.push(run);
  const members = new Set([run.id]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const other of sameCommit) {
      if (members.has(other.id)) continue;
      if (other.needs.some((id) => members.has(id)) || sameCommit.some((m) => members.has(m.id) && m.needs.includes(other.id))) {
        members.add(other.id);
        grew = true;
      }
    }
  }
  const chosen = sameCommit.filter((other) => members.has(other.id));
  // Needs order: a run after every run it needs.
  const ordered: Run[] = [];
  const placed = new Set<string>();
  while (ordered.length < chosen.length) {
    const next = chosen.filter((other) => !placed.has(other.id) && other.needs.every((id) => placed.has(id) || !members.has(id)));
    if (next.length === 0) break;
    next.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
    for (const other of next) {
      ordered.push(other);
      placed.add(other.id);
    }
  }
  return ordered;
}

function taskProblem(listed: Exclude<TaskList, { kind: 'tasks' }>): string {
  switch (listed.kind) {
    case 'not_found':
      return 'the repository or the ref does not exist, or you cannot read it.';
    case 'no_tasks':
      return `no tasks at ${listed.sha.slice(0, 12)}: ${listed.reason}`;
    case 'manifest_errors':
      return `the manifest at ${listed.sha.slice(0, 12)} has errors: ${listed.errors.map((e) => `${e.file}:${e.line}:${e.column} ${e.field}: ${e.message}`).join('; ')}`;
    case 'unavailable':
      return `GitHub could not be asked for the tasks just now (${listed.error}); try again.`;
  }
}

/** The parameter a refusal is about, when it names one (`parameter \`lang\``). */
function paramNamed(reason: string): string | null {
  return /parameter `([^`]+)`/.exec(reason)?.[1] ?? null;
}

function doneNotice(done: string | null): { kind: 'ok'; text: string } | null {
  switch (done) {
    case 'cancelled':
      return { kind: 'ok', text: 'Cancelled.' };
    case 'started':
      return { kind: 'ok', text: 'Started.' };
    case 'pinned':
      return { kind: 'ok', text: 'The pin is extended.' };
    default:
      return null;
  }
}
