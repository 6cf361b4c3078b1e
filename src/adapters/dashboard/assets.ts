/**
 * The dashboard's stylesheet and its one small script, served from the app itself (no build
 * step). The script adds what a server-rendered page cannot do alone: the runs list and a run's
 * state follow `GET /api/events`, a run's log follows `GET /api/runs/:id/logs?follow=1`, the log
 * can be searched, and CIDs copied. Everything it writes into the page goes in as text.
 */

export const dashboardCss = `
:root { color-scheme: light; --fg: #1f2328; --muted: #57606a; --line: #d0d7de; --bg: #fff; --link: #0550ae; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); overflow-wrap: anywhere; }
a { color: var(--link); }
.skip { position: absolute; left: -999px; top: 0; background: #fff; padding: .5rem; }
.skip:focus { left: .5rem; z-index: 10; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.top { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: center; padding: .75rem 1rem; border-bottom: 1px solid var(--line); }
.brand { font-weight: 700; text-decoration: none; color: var(--fg); }
.top ul { display: flex; flex-wrap: wrap; gap: .25rem 1rem; list-style: none; margin: 0; padding: 0; }
.top [aria-current] { font-weight: 700; }
.signout { margin-left: auto; }
main { padding: 1rem; max-width: 72rem; margin: 0 auto; }
h1 .sub { font-size: 1rem; font-weight: 400; color: var(--muted); }
button, .button { font: inherit; padding: .3rem .8rem; border: 1px solid #8c959f; border-radius: 6px; background: #f6f8fa; color: var(--fg); cursor: pointer; text-decoration: none; display: inline-block; }
input, select { font: inherit; padding: .25rem .4rem; max-width: 100%; border: 1px solid #8c959f; border-radius: 4px; }
:focus-visible { outline: 3px solid #0969da; outline-offset: 2px; }
.state { display: inline-block; padding: 0 .5rem; border-radius: 1rem; font-size: .875rem; border: 1px solid; white-space: nowrap; }
.state-queued { color: #7d4e00; background: #fff8c5; }
.state-running { color: #0550ae; background: #ddf4ff; }
.state-succeeded { color: #116329; background: #dafbe1; }
.state-failed, .state-timed_out { color: #a40e26; background: #ffebe9; }
.state-cancelled { color: #424a53; background: #eaeef2; }
.counts, .running { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .5rem 1rem; }
.running { flex-direction: column; }
.note, .hint { color: var(--muted); font-size: .875rem; }
.filters { display: flex; flex-wrap: wrap; gap: 0 1rem; align-items: end; }
.filters p { margin: .25rem 0; display: flex; flex-direction: column; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
.mono, code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .875rem; }
.facts dt { font-weight: 600; }
.facts dd { margin: 0 0 .5rem 0; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; margin: .5rem 0 1rem; }
.inline { display: flex; flex-wrap: wrap; gap: .25rem; align-items: center; }
.notice { padding: .5rem; border-left: 4px solid #1a7f37; background: #dafbe1; }
.error { padding: .5rem; border-left: 4px solid #a40e26; background: #ffebe9; }
.pipeline { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 1rem; }
.pipeline ul { list-style: none; padding: 0; margin: 0; display: flex; flex-direction: column; gap: .5rem; }
.pipeline > li + li::before { content: "→"; color: var(--muted); margin-right: .5rem; }
.pipeline > li { display: flex; align-items: center; }
.node { border: 1px solid var(--line); border-radius: 6px; padding: .4rem .6rem; }
.node.current { border-color: #0969da; border-width: 2px; }
.needs { display: block; font-size: .8rem; color: var(--muted); }
.log { background: #f6f8fa; border: 1px solid var(--line); padding: .5rem; max-height: 32rem; overflow: auto; white-space: pre-wrap; word-break: break-all; }
mark { background: #fff8c5; }
progress { vertical-align: middle; max-width: 8rem; }
fieldset { border: 1px solid var(--line); border-radius: 6px; }
@media (max-width: 40rem) {
  table, thead, tbody, tr, th, td { display: block; }
  thead tr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  tr { border-bottom: 1px solid var(--line); padding: .25rem 0; }
  td { border: 0; padding: .1rem .25rem; }
  td::before { content: attr(data-label) ": "; font-weight: 600; }
  .signout { margin-left: 0; }
}
`;

export const dashboardJs = `
'use strict';
(function () {
  var announce = function (text) { var el = document.getElementById('announce'); if (el) el.textContent = text; };
  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('button[data-copy]');
    if (!button) return;
    navigator.clipboard.writeText(button.getAttribute('data-copy')).then(function () { announce('Copied'); }, function () { announce('Could not copy'); });
  });

  var stateNames = { queued: 'queued', running: 'running', succeeded: 'succeeded', failed: 'failed', cancelled: 'cancelled', timed_out: 'timed out' };
  function badge(state) {
    var span = document.createElement('span');
    span.className = 'state state-' + state;
    span.textContent = stateNames[state] || state;
    return span;
  }
  function link(run, text) {
    var a = document.createElement('a');
    a.href = '/runs/' + encodeURIComponent(run.id);
    a.textContent = text;
    return a;
  }
  function cell(label, content) {
    var td = document.createElement('td');
    td.setAttribute('data-label', label);
    if (typeof content === 'string') td.textContent = content; else td.appendChild(content);
    return td;
  }

  var live = document.querySelector('[data-live-runs]');
  var runPage = document.querySelector('[data-run-id]');
  if ((live || runPage) && window.EventSource) {
    var events = new EventSource('/api/events');
    var names = ['run.queued', 'run.started', 'run.succeeded', 'run.failed', 'run.cancelled', 'run.timed_out'];
    names.forEach(function (name) {
      events.addEventListener(name, function (message) {
        var run = JSON.parse(message.data);
        if (live) updateList(run);
        if (runPage && runPage.getAttribute('data-run-id') === run.id) updateRun(run);
      });
    });
  }

  function matches(run) {
    var f = function (key) { return live.getAttribute('data-filter-' + key); };
    return (!f('repo') || f('repo') === run.repo) && (!f('state') || f('state') === run.state) && (!f('task') || f('task') === run.task) && (!f('requester') || f('requester') === run.requested_by);
  }
  function updateList(run) {
    var row = document.getElementById('run-' + run.id);
    var before = row ? row.getAttribute('data-state') : null;
    if (before !== run.state && matchesExceptState(run)) {
      if (before) bump(before, -1);
      bump(run.state, 1);
    }
    if (row) {
      row.setAttribute('data-state', run.state);
      var stateCell = row.querySelector('[data-state-cell]');
      stateCell.textContent = '';
      stateCell.appendChild(badge(run.state));
    } else if (matches(run)) {
      var tr = document.createElement('tr');
      tr.id = 'run-' + run.id;
      tr.setAttribute('data-state', run.state);
      tr.appendChild(cell('Run', link(run, run.id)));
      tr.appendChild(cell('Repository', run.repo + (run.number != null ? ' #' + run.number : '')));
      tr.appendChild(cell('Task', run.task));
      var sc = cell('State', badge(run.state));
      sc.setAttribute('data-state-cell', '');
      tr.appendChild(sc);
      tr.appendChild(cell('Requested by', run.requested_by));
      tr.appendChild(cell('Created', run.created_at.slice(0, 19).replace('T', ' ') + ' UTC'));
      var body = document.querySelector('[data-runs]');
      body.insertBefore(tr, body.firstChild);
    }
    var running = document.querySelector('[data-running]');
    var item = document.getElementById('running-' + run.id);
    if (run.state === 'running' && !item && matchesExceptState(run)) {
      var li = document.createElement('li');
      li.id = 'running-' + run.id;
      li.appendChild(link(run, run.repo + ' · ' + run.task));
      var bar = document.createElement('progress');
      bar.setAttribute('aria-label', run.task + ' is running');
      bar.setAttribute('data-progress', '');
      var words = document.createElement('span');
      words.setAttribute('data-progress-words', '');
      li.appendChild(document.createTextNode(' '));
      li.appendChild(bar);
      li.appendChild(document.createTextNode(' '));
      li.appendChild(words);
      running.appendChild(li);
      showProgress(li, run);
    } else if (run.state !== 'running' && item) {
      item.remove();
    } else if (item) {
      showProgress(item, run);
    }
    var none = document.querySelector('[data-none-running]');
    if (none) none.hidden = running.children.length > 0;
  }
  function matchesExceptState(run) {
    var f = function (key) { return live.getAttribute('data-filter-' + key); };
    return (!f('repo') || f('repo') === run.repo) && (!f('task') || f('task') === run.task) && (!f('requester') || f('requester') === run.requested_by);
  }
  function bump(state, by) {
    var el = document.querySelector('[data-count="' + state + '"]');
    if (el) el.textContent = String(Math.max(0, Number(el.textContent) + by));
  }
  // A running run's bar: its value when the task said its total, else indeterminate; the words beside it.
  function showProgress(container, run) {
    var bar = container.querySelector('[data-progress]');
    var words = container.querySelector('[data-progress-words]');
    var p = run.progress;
    if (!bar || !p) return;
    var known = typeof p.total === 'number' && p.total > 0;
    if (known) { bar.max = p.total; bar.value = Math.min(p.done, p.total); } else bar.removeAttribute('value');
    var text = p.done + (known ? ' of ' + p.total : '') + (p.message ? ' \u2014 ' + p.message : '');
    bar.setAttribute('aria-label', run.task + ' is running: ' + text);
    if (words) words.textContent = text;
  }
  function updateRun(run) {
    showProgress(runPage, run);
    var before = runPage.getAttribute('data-run-state');
    if (before === run.state) return;
    runPage.setAttribute('data-run-state', run.state);
    var stateCell = runPage.querySelector('[data-state-cell]');
    stateCell.textContent = '';
    stateCell.appendChild(badge(run.state));
    announce('The run is now ' + (stateNames[run.state] || run.state));
    // Outputs, buttons and the timeline change when a run ends: show them.
    if (run.state !== 'queued' && run.state !== 'running') setTimeout(function () { location.reload(); }, 1500);
  }

  var log = document.querySelector('[data-log]');
  if (runPage && log) followLog(runPage.getAttribute('data-run-id'));
  function followLog(id) {
    fetch('/api/runs/' + encodeURIComponent(id) + '/logs?follow=1', { credentials: 'same-origin' }).then(function (response) {
      if (!response.ok || !response.body) return;
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var pump = function () {
        return reader.read().then(function (step) {
          if (step.done) { log.setAttribute('data-complete', ''); return; }
          var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
          log.appendChild(document.createTextNode(decoder.decode(step.value, { stream: true })));
          if (atEnd) log.scrollTop = log.scrollHeight;
          search();
          return pump();
        });
      };
      return pump();
    });
  }
  var searchBox = document.querySelector('[data-log-search]');
  var results = document.querySelector('[data-log-results]');
  var count = document.querySelector('[data-log-matches]');
  function search() {
    if (!searchBox) return;
    var needle = searchBox.value;
    if (!needle) { results.hidden = true; log.hidden = false; count.textContent = ''; return; }
    var lines = log.textContent.split('\\n').filter(function (line) { return line.toLowerCase().indexOf(needle.toLowerCase()) !== -1; });
    results.textContent = lines.join('\\n');
    results.hidden = false;
    log.hidden = true;
    count.textContent = lines.length + (lines.length === 1 ? ' line matches' : ' lines match');
  }
  if (searchBox) searchBox.addEventListener('input', search);
})();
`;
