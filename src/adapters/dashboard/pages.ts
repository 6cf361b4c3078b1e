/**
 * The dashboard's pages, rendered on the server from plain data. Every value from a repository, a
 * task or a person goes through `html`, which escapes it.
 */
import type { LoadedManifest, ResolvedTask } from '../../core/manifest/load-manifest.js';
import type { RunButtons } from '../../core/run-service/run-views.js';
import { runStates, type Run, type RunState } from '../../core/runs/run.js';
import { html, query, segment, type Html } from './html.js';

export interface PageFrame {
  title: string;
  /** Signed-in login, or null. */
  login: string | null;
  csrf: string | null;
  /** Which navigation entry is current. */
  current?: 'runs' | 'start' | 'repos';
}

export function layout(frame: PageFrame, body: Html): Html {
  const nav = (key: NonNullable<PageFrame['current']>, href: string, label: string) =>
    html`<li><a href="${href}"${frame.current === key ? html` aria-current="page"` : ''}>${label}</a></li>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${frame.title} · task-mgmt</title>
<link rel="stylesheet" href="/dashboard/assets/dashboard.css">
<script src="/dashboard/assets/dashboard.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<a class="brand" href="/">task-mgmt</a>
${
  frame.login
    ? html`<nav aria-label="Main"><ul>${nav('runs', '/', 'Runs')}${nav('start', '/start', 'Start a run')}${nav('repos', '/repositories', 'Repositories')}</ul></nav>
<form class="signout" method="post" action="/logout"><input type="hidden" name="csrf" value="${frame.csrf ?? ''}"><span>@${frame.login}</span> <button type="submit">Sign out</button></form>`
    : ''
}
</header>
<main id="main">
${body}
</main>
<div id="announce" class="visually-hidden" aria-live="polite"></div>
</body>
</html>
`;
}

export function signInPage(returnTo: string, problem: string | null): Html {
  return layout(
    { title: 'Sign in', login: null, csrf: null },
    html`<h1>Sign in</h1>
${problem ? html`<p class="error" role="alert">${problem}</p>` : ''}
<p>Sign in with your GitHub account to see the runs of the repositories you can read, and to start or cancel runs where your role allows it.</p>
<p><a class="button" href="/login${query({ return: returnTo })}">Sign in with GitHub</a></p>`,
  );
}

export function messagePage(frame: PageFrame, heading: string, message: string): Html {
  return layout(frame, html`<h1>${heading}</h1><p>${message}</p><p><a href="/">Back to the runs</a></p>`);
}

export function stateBadge(state: RunState): Html {
  return html`<span class="state state-${state}">${state.replace('_', ' ')}</span>`;
}

export function time(date: Date | null): Html {
  if (!date) return html`—`;
  const iso = date.toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 19).replace('T', ' ')} UTC</time>`;
}

function fullName(run: Run): string {
  return `${run.repo.owner}/${run.repo.name}`;
}

export interface RunsFilter {
  repo?: string;
  state?: RunState;
  task?: string;
  requester?: string;
}

export interface RunsPageData {
  runs: Run[];
  /** Runs per state among the runs the filter (without `state`) finds. */
  counts: Record<RunState, number>;
  running: Run[];
  filter: RunsFilter;
  /** The listing was cut at this many runs. */
  window: number;
  repos: string[];
}

export function runsPage(frame: PageFrame, data: RunsPageData): Html {
  const f = data.filter;
  const countLink = (state: RunState) =>
    html`<li><a href="/${query({ ...f, state })}"${f.state === state ? html` aria-current="true"` : ''}>${stateBadge(state)} <span data-count="${state}">${data.counts[state]}</span></a></li>`;
  return layout(
    { ...frame, current: 'runs' },
    html`<h1>Runs</h1>
<div data-live-runs data-filter-repo="${f.repo ?? ''}" data-filter-state="${f.state ?? ''}" data-filter-task="${f.task ?? ''}" data-filter-requester="${f.requester ?? ''}">
<section aria-labelledby="counts-h"><h2 id="counts-h">By state</h2>
<ul class="counts">${runStates.map(countLink)}</ul>
<p class="note">Counted among the newest ${data.window} runs that match the other filters.</p>
</section>
<section aria-labelledby="running-h"><h2 id="running-h">Running now</h2>
<ul class="running" data-running>${data.running.map(runningItem)}</ul>
${data.running.length === 0 ? html`<p data-none-running>Nothing is running.</p>` : ''}
</section>
<section aria-labelledby="filter-h"><h2 id="filter-h">Filter</h2>
<form class="filters" method="get" action="/">
<p><label for="f-repo">Repository</label>
<input id="f-repo" name="repo" list="repo-names" value="${f.repo ?? ''}" placeholder="owner/name" autocomplete="off"></p>
<datalist id="repo-names">${data.repos.map((name) => html`<option value="${name}"></option>`)}</datalist>
<p><label for="f-state">State</label>
<select id="f-state" name="state"><option value="">any</option>${runStates.map((state) => html`<option value="${state}"${f.state === state ? html` selected` : ''}>${state.replace('_', ' ')}</option>`)}</select></p>
<p><label for="f-task">Task</label> <input id="f-task" name="task" value="${f.task ?? ''}" autocomplete="off"></p>
<p><label for="f-requester">Requester</label> <input id="f-requester" name="requester" value="${f.requester ?? ''}" autocomplete="off"></p>
<p><button type="submit">Filter</button> <a href="/">Clear</a></p>
</form>
</section>
<section aria-labelledby="list-h"><h2 id="list-h">Newest first</h2>
<table class="runs">
<thead><tr><th scope="col">Run</th><th scope="col">Repository</th><th scope="col">Task</th><th scope="col">State</th><th scope="col">Requested by</th><th scope="col">Created</th></tr></thead>
<tbody data-runs>${data.runs.map(runRow)}</tbody>
</table>
${data.runs.length === 0 ? html`<p>No run matches.</p>` : ''}
</section>
</div>`,
  );
}

export function runRow(run: Run): Html {
  return html`<tr id="run-${run.id}" data-state="${run.state}"><td data-label="Run"><a href="/runs/${segment(run.id)}">${run.id}</a></td><td data-label="Repository">${fullName(run)}${run.number !== null ? ` #${run.number}` : ''}</td><td data-label="Task">${run.task}</td><td data-label="State" data-state-cell>${stateBadge(run.state)}</td><td data-label="Requested by">${run.requestedBy}</td><td data-label="Created">${time(run.createdAt)}</td></tr>`;
}

function runningItem(run: Run): Html {
  return html`<li id="running-${run.id}"><a href="/runs/${segment(run.id)}">${fullName(run)} · ${run.task}</a> ${progressBar(run)}</li>`;
}

/** A running run's progress: a bar with its value when the task said its total, else an indeterminate one; the words beside it. */
export function progressBar(run: Run): Html {
  const progress = run.progress ?? null;
  const known = progress !== null && progress.total !== undefined && progress.total > 0;
  const words = progress === null ? '' : `${progress.done}${known ? ` of ${progress.total}` : ''}${progress.message ? ` — ${progress.message}` : ''}`;
  return html`<progress data-progress aria-label="${run.task} is running${words ? `: ${words}` : ''}"${known ? html` value="${String(Math.min(progress!.done, progress!.total!))}" max="${String(progress!.total)}"` : ''}></progress> <span data-progress-words>${words}</span>`;
}

export interface RunPageData {
  run: Run;
  /** The runs of the same request, the run included, in `needs` order. */
  pipeline: Run[];
  buttons: RunButtons;
  gatewayUrl: string;
  githubWebUrl: string;
  /** A use case's answer to a button, shown at the top. */
  notice: { kind: 'ok' | 'error'; text: string } | null;
}

export function runPage(frame: PageFrame, data: RunPageData): Html {
  const { run } = data;
  const repoUrl = `${data.githubWebUrl}/${segment(run.repo.owner)}/${segment(run.repo.name)}`;
  const button = (action: string, label: string, extra: Html | string = '') =>
    html`<form class="inline" method="post" action="/runs/${segment(run.id)}/${action}"><input type="hidden" name="csrf" value="${frame.csrf ?? ''}">${extra}<button type="submit">${label}</button></form>`;
  const actions = [
    data.buttons.cancel ? button('cancel', 'Cancel') : '',
    data.buttons.rerun ? button('rerun', 'Re-run') : '',
    data.buttons.pin
      ? button(
          'pin',
          'Extend pin',
          html`<label for="pin-duration">Keep pinned for</label> <select id="pin-duration" name="duration"><option value="30d">30 days</option><option value="90d">90 days</option><option value="365d">365 days</option></select> `,
        )
      : '',
  ];
  return layout(
    frame,
    html`<div data-run-id="${run.id}" data-run-state="${run.state}">
<h1>${run.task} <span class="sub">run ${run.id}</span></h1>
${data.notice ? html`<p class="${data.notice.kind === 'ok' ? 'notice' : 'error'}" role="${data.notice.kind === 'ok' ? 'status' : 'alert'}">${data.notice.text}</p>` : ''}
<p>State: <span data-state-cell>${stateBadge(run.state)}</span>${run.state === 'running' ? html` ${progressBar(run)}` : ''}${run.error ? html` — ${run.error}` : ''}</p>
${actions.some((a) => a !== '') ? html`<div class="actions">${actions}</div>` : ''}
<section aria-labelledby="about-h"><h2 id="about-h">About</h2>
<dl class="facts">
<dt>Repository</dt><dd><a href="${repoUrl}">${fullName(run)}</a>${run.number !== null ? html` <a href="${repoUrl}/${run.isPullRequest ? 'pull' : 'issues'}/${run.number}">#${run.number}</a>` : ''}</dd>
<dt>Commit</dt><dd><a class="mono" href="${repoUrl}/commit/${run.sha}">${run.sha}</a></dd>
<dt>Asked by</dt><dd>${run.requesterKind === 'user' ? `@${run.requestedBy}` : run.requestedBy} (${run.trigger})</dd>
<dt>Approved by</dt><dd>${run.approvals.length === 0 ? 'no review was needed' : html`<ul>${run.approvals.map((a) => html`<li>${a.reviewer ? `@${a.reviewer}` : `review ${a.reviewId}`} at <span class="mono">${a.commit.slice(0, 12)}</span></li>`)}</ul>`}</dd>
<dt>Parameters</dt><dd>${Object.keys(run.params).length === 0 ? 'none' : html`<ul>${Object.entries(run.params).map(([k, v]) => html`<li><code>${k}</code> = <code>${v}</code></li>`)}</ul>`}</dd>
</dl>
</section>
<section aria-labelledby="timeline-h"><h2 id="timeline-h">Timeline</h2>
<ol class="timeline">
<li>Created ${time(run.createdAt)}</li>
<li>Queued ${time(run.queuedAt)}</li>
${run.startedAt ? html`<li>Started ${time(run.startedAt)}</li>` : ''}
${run.finishedAt ? html`<li>Ended ${stateBadge(run.state)} ${time(run.finishedAt)}${run.exitCode !== null ? ` (exit code ${run.exitCode})` : ''}</li>` : ''}
</ol>
</section>
<section aria-labelledby="pipeline-h"><h2 id="pipeline-h">Pipeline</h2>
${pipelineGraph(data.pipeline, run.id)}
</section>
<section aria-labelledby="outputs-h"><h2 id="outputs-h">Outputs</h2>
${outputs(data)}
</section>
<section aria-labelledby="log-h"><h2 id="log-h">Log</h2>
<p><a href="/api/runs/${segment(run.id)}/logs">Whole log as text</a></p>
<p><label for="log-search">Search the log</label> <input id="log-search" type="search" data-log-search autocomplete="off"> <span data-log-matches aria-live="polite"></span></p>
<pre class="log" data-log role="log" tabindex="0" aria-label="Log of run ${run.id}"></pre>
<pre class="log" data-log-results role="region" hidden tabindex="0" aria-label="Log lines that match"></pre>
</section>
</div>`,
  );
}

/** The tasks of one request as columns: each task after the ones it needs, with its state. */
function pipelineGraph(pipeline: Run[], current: string): Html {
  if (pipeline.length <= 1) return html`<p>This run is the only task of its request.</p>`;
  const level = new Map<string, number>();
  for (const run of pipeline) level.set(run.id, Math.max(0, ...run.needs.map((id) => (level.get(id) ?? -1) + 1)));
  const columns: Run[][] = [];
  for (const run of pipeline) (columns[level.get(run.id)!] ??= []).push(run);
  const taskOf = new Map(pipeline.map((run) => [run.id, run.task]));
  return html`<ol class="pipeline">${columns.map(
    (column, i) =>
      html`<li><span class="visually-hidden">Step ${i + 1}</span><ul>${column.map(
        (run) =>
          html`<li class="node${run.id === current ? ' current' : ''}"><a href="/runs/${segment(run.id)}"${run.id === current ? html` aria-current="page"` : ''}>${run.task}</a> ${stateBadge(run.state)}${
            run.needs.length > 0 ? html`<span class="needs">needs ${run.needs.map((id) => taskOf.get(id) ?? id).join(', ')}</span>` : ''
          }</li>`,
      )}</ul></li>`,
  )}</ol>`;
}

function outputs(data: RunPageData): Html {
  const { run } = data;
  const link = (cid: string) => `${data.gatewayUrl}/ipfs/${cid}`;
  const copy = (cid: string, what: string) => html`<button type="button" data-copy="${cid}" aria-label="Copy the CID of ${what}">Copy</button>`;
  if (!run.outputCid && !run.provenanceCid) return html`<p>No outputs${run.state === 'running' || run.state === 'queued' ? ' yet' : ''}.</p>`;
  return html`<dl class="facts">
${run.outputCid ? html`<dt>Outputs</dt><dd><a class="mono" href="${link(run.outputCid)}">${run.outputCid}</a> ${copy(run.outputCid, 'the outputs')}</dd>` : ''}
${run.provenanceCid ? html`<dt>Provenance</dt><dd><a class="mono" href="${link(run.provenanceCid)}">${run.provenanceCid}</a> ${copy(run.provenanceCid, 'the provenance record')}</dd>` : ''}
<dt>Pinned until</dt><dd>${time(run.pinnedUntil)}</dd>
</dl>
${
  run.outputFiles.length > 0
    ? html`<table class="files"><caption>Files</caption><thead><tr><th scope="col">Name</th><th scope="col">Size</th><th scope="col">CID</th></tr></thead><tbody>${run.outputFiles.map(
        (file) => html`<tr><td data-label="Name">${file.name}</td><td data-label="Size">${file.kind === 'directory' ? 'folder' : `${file.size} bytes`}</td><td data-label="CID"><a class="mono" href="${link(file.cid)}">${file.cid}</a> ${copy(file.cid, file.name)}</td></tr>`,
      )}</tbody></table>`
    : ''
}`;
}

export interface StartPageData {
  repos: string[];
  repo: string | null;
  ref: string;
  tasks: LoadedManifest | null;
  task: ResolvedTask | null;
  params: Record<string, string>;
  /** Why the tasks could not be listed, or why the run was refused. */
  problem: string | null;
  /** The parameter the problem is about. */
  field: string | null;
}

export function startPage(frame: PageFrame, data: StartPageData): Html {
  const problem = data.problem ? html`<p class="error" role="alert" id="start-problem">${data.problem}</p>` : '';
  const refField = html`<p><label for="s-ref">Ref</label> <input id="s-ref" name="ref" value="${data.ref}" placeholder="pull/12, or empty for the default branch" autocomplete="off"></p>`;
  const pick = html`<form method="get" action="/start">
<p><label for="s-repo">Repository</label>
<select id="s-repo" name="repo" required><option value="">choose…</option>${data.repos.map((name) => html`<option value="${name}"${data.repo === name ? html` selected` : ''}>${name}</option>`)}</select></p>
${refField}
${
  data.tasks
    ? html`<p><label for="s-task">Task</label> <select id="s-task" name="task"><option value="">every task</option>${data.tasks.tasks.map(
        (task) => html`<option value="${task.name}"${data.task?.name === task.name ? html` selected` : ''}>${task.name}${task.description ? ` — ${task.description}` : ''}</option>`,
      )}</select></p>`
    : ''
}
<p><button type="submit">${data.tasks ? 'Show parameters' : 'Show tasks'}</button></p>
</form>`;
  const form =
    data.repo && data.tasks
      ? html`<form method="post" action="/start" aria-describedby="${data.problem ? 'start-problem' : ''}">
<input type="hidden" name="csrf" value="${frame.csrf ?? ''}">
<input type="hidden" name="repo" value="${data.repo}">
<input type="hidden" name="ref" value="${data.ref}">
<input type="hidden" name="task" value="${data.task?.name ?? ''}">
<h2>Run ${data.task ? data.task.name : 'every task'} on ${data.repo}${data.ref ? ` at ${data.ref}` : ''}</h2>
${data.task ? paramFields(data.task, data.params, data.field) : html`<p>Every task runs with its parameters’ defaults.</p>`}
<p><button type="submit">Start</button></p>
</form>`
      : '';
  return layout({ ...frame, current: 'start' }, html`<h1>Start a run</h1>${problem}${pick}${form}`);
}

/** One field per parameter of the task, with the manifest's pattern, choices and description. */
function paramFields(task: ResolvedTask, values: Record<string, string>, field: string | null): Html {
  const names = Object.keys(task.params);
  if (names.length === 0) return html`<p>This task takes no parameters.</p>`;
  return html`<fieldset><legend>Parameters</legend>${names.map((name) => {
    const spec = task.params[name]!;
    const id = `p-${name}`;
    const value = values[name] ?? spec.default ?? '';
    const help = [spec.description, spec.pattern ? `must match ${spec.pattern}` : '', spec.default !== undefined ? `default ${spec.default}` : ''].filter(Boolean).join('; ');
    const invalid = field === `params.${name}` || field === name;
    const described = help ? html` aria-describedby="${id}-help"` : '';
    const control = spec.enum
      ? html`<select id="${id}" name="param.${name}"${described}${spec.required ? html` required` : ''}>${spec.required ? '' : html`<option value="">(default)</option>`}${spec.enum.map((option) => html`<option value="${option}"${option === value ? html` selected` : ''}>${option}</option>`)}</select>`
      : html`<input id="${id}" name="param.${name}" value="${value}"${described}${spec.required ? html` required` : ''}${invalid ? html` aria-invalid="true"` : ''} autocomplete="off">`;
    return html`<p><label for="${id}">${name}</label> ${control}${help ? html` <span class="hint" id="${id}-help">${help}</span>` : ''}</p>`;
  })}</fieldset>`;
}

export interface RepoRow {
  name: string;
  tasks: { name: string; description: string | null; last: Run | null; badge: string }[];
  /** Why no task is listed. */
  problem: string | null;
}

export function repositoriesPage(frame: PageFrame, repos: RepoRow[]): Html {
  return layout(
    { ...frame, current: 'repos' },
    html`<h1>Repositories</h1>
${repos.length === 0 ? html`<p>The App is installed on no repository you can read.</p>` : ''}
${repos.map(
  (repo) => html`<section class="repo" aria-labelledby="repo-${segment(repo.name)}"><h2 id="repo-${segment(repo.name)}">${repo.name}</h2>
${repo.problem ? html`<p>${repo.problem}</p>` : ''}
${
  repo.tasks.length > 0
    ? html`<table><thead><tr><th scope="col">Task</th><th scope="col">Last run</th><th scope="col">Badge</th></tr></thead><tbody>${repo.tasks.map(
        (task) =>
          html`<tr><td data-label="Task">${task.name}${task.description ? html`<br><span class="hint">${task.description}</span>` : ''}</td><td data-label="Last run">${
            task.last ? html`<a href="/runs/${segment(task.last.id)}">${stateBadge(task.last.state)} ${time(task.last.createdAt)}</a>` : 'never run'
          }</td><td data-label="Badge"><code class="mono">${task.badge}</code> <button type="button" data-copy="${task.badge}" aria-label="Copy the badge URL of ${task.name}">Copy</button></td></tr>`,
      )}</tbody></table>
<p><a href="/start${query({ repo: repo.name })}">Start a run on ${repo.name}</a> · <a href="/${query({ repo: repo.name })}">Its runs</a></p>`
    : ''
}
</section>`,
)}`,
  );
}

/** A badge for READMEs: the task's last run's state, as an SVG. */
export function badgeSvg(task: string, state: RunState | 'never run'): string {
  const colour: Record<string, string> = { succeeded: '#1a7f37', failed: '#b42318', timed_out: '#b42318', cancelled: '#57606a', running: '#0550ae', queued: '#7d4e00', 'never run': '#57606a' };
  const label = task.length > 40 ? `${task.slice(0, 39)}…` : task;
  const text = state.replace('_', ' ');
  const left = 8 + label.length * 7;
  const right = 8 + text.length * 7;
  return html`<svg xmlns="http://www.w3.org/2000/svg" width="${left + right}" height="20" role="img" aria-label="${label}: ${text}"><title>${label}: ${text}</title><rect width="${left}" height="20" fill="#24292f"/><rect x="${left}" width="${right}" height="20" fill="${colour[state] ?? '#57606a'}"/><g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11"><text x="4" y="14">${label}</text><text x="${left + 4}" y="14">${text}</text></g></svg>`.text;
}
