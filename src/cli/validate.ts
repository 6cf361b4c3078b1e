/**
 * `task-mgmt validate [dir] [task] [key=value…]`: what `/run` would do with a folder's task
 * definition, or its errors — and whether `task-mgmt run` (or `/run`) would refuse the request,
 * asked of the same run service on a scratch store, so the two never disagree. Runs nothing.
 */
import { LocalRepoHost } from '../adapters/local/local-repo-host.js';
import { SqliteRunStore } from '../adapters/store/sqlite-run-store.js';
import { readFile } from 'node:fs/promises';
import { readManifest } from '../core/manifest/read-manifest.js';
import { describeOrgPolicy, orgRefusal, parseOrgPolicy, type OrgPolicyState } from '../core/run-service/run-service.js';
import type { ResolvedTask } from '../core/manifest/load-manifest.js';
import { formatDuration, formatSize } from '../core/runs/units.js';
import type { Config } from '../config.js';
import { taskCatalog } from '../app.js';
import { localRunService, parseFolderRequest, refusalLine, requestLocal, silentChecks } from './local-request.js';

export async function validate(config: Config, argv: string[], out: (line: string) => void = console.log, err: (line: string) => void = console.error): Promise<number> {
  const orgAt = argv.indexOf('--org');
  if (orgAt >= 0) {
    const file = argv[orgAt + 1];
    if (file === undefined || file.startsWith('-')) {
      err('task-mgmt validate: --org needs the org policy file (.github/task-mgmt.yml of the org\'s .github repository)');
      return 2;
    }
    const org = await readOrgFile(file);
    if (org.kind === 'unreadable') {
      err(`task-mgmt validate: ${org.error}`);
      return 2;
    }
    const state = org.state;
    if (state.kind === 'invalid') out(`${file}:${state.line}: ${state.field ? `${state.field}: ` : ''}${state.message}`);
    for (const line of describeOrgPolicy(state)) out(line);
    const rest = [...argv.slice(0, orgAt), ...argv.slice(orgAt + 2)];
    if (state.kind === 'invalid') return 1;
    if (rest.length === 0) return 0;
    out('');
    return validateFolder(config, rest, out, err, state);
  }
  return validateFolder(config, argv, out, err, null);
}

async function readOrgFile(file: string): Promise<{ kind: 'read'; state: OrgPolicyState } | { kind: 'unreadable'; error: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    return { kind: 'unreadable', error: `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` };
  }
  const parsed = parseOrgPolicy(text);
  const where = `\`${file}\``;
  return {
    kind: 'read',
    state: parsed.ok ? { kind: 'policy', where, policy: parsed.policy, digest: '' } : { kind: 'invalid', where, line: parsed.line, field: parsed.field, message: parsed.message, digest: '' },
  };
}

async function validateFolder(config: Config, argv: string[], out: (line: string) => void, err: (line: string) => void, org: OrgPolicyState | null): Promise<number> {
  const request = parseFolderRequest(argv);
  if ('error' in request) {
    err(`task-mgmt validate: ${request.error}`);
    return 2;
  }
  const { dir } = request;
  const host = new LocalRepoHost(dir);
  const read = await readManifest(host, '0'.repeat(40), taskCatalog(config), config.PROCFILE_IMAGE);
  if (!read.ok && 'errors' in read) {
    for (const error of read.errors) out(`${error.file}:${error.line}:${error.column}: ${error.field ? `${error.field}: ` : ''}${error.message}`);
    out(`\n${read.errors.length} error${read.errors.length === 1 ? '' : 's'}: /run would refuse this task definition.`);
    return 1;
  }
  if (!read.ok) {
    out(`${read.reason.replace(/`0{12}`/, dir)}${request.bareWord !== null ? ` (and there is no folder ${request.bareWord} here)` : ''}`);
    return 1;
  }
  const { manifest } = read;
  out(`${manifest.source} in ${dir}: ${manifest.tasks.length} task${manifest.tasks.length === 1 ? '' : 's'}, in the order they run:\n`);
  for (const task of manifest.tasks) out(describe(task));
  out('');
  out(`Who may /run: the ${manifest.permission} role or higher.`);
  out(`A push to a pull request ${manifest.cancelOnPush ? 'cancels' : 'does not cancel'} its queued and running runs.`);
  if (manifest.pinTtlMs !== undefined) out(`Outputs stay pinned for ${formatDuration(manifest.pinTtlMs)}.`);
  out(
    `A pull request that changes any of these needs an approving review of its head by someone other than its author:\n  ${read.taskPaths.map((path) => path || '(every file: a task reads the whole repository — a Procfile, or a Dockerfile that copies it all)').join('\n  ')}`,
  );
  out(`Task definition digest: ${read.digest}`);
  if (org) {
    const tasks = request.task ? manifest.tasks.filter((task) => task.name === request.task) : manifest.tasks;
    const refusal = orgRefusal(org, { repo: { owner: 'local', name: dir }, tasks, pinTtlMs: manifest.pinTtlMs, role: 'admin', actor: 'you', manifestRole: manifest.permission });
    if (refusal !== null) {
      out(`\nThe org policy would refuse it: ${refusal}`);
      return 1;
    }
    out('\nThe org policy allows it.');
  }

  const refusal = await wouldRefuse(config, host, request);
  if (refusal !== null) {
    out(`\ntask-mgmt run and /run would refuse ${request.task ? `\`${request.task}\`` : 'it'}: ${refusal}`);
    return 1;
  }
  return 0;
}

/** Asks the run service, on a scratch store in memory, what it would answer `task-mgmt run` with the same words. */
async function wouldRefuse(config: Config, host: LocalRepoHost, request: Exclude<ReturnType<typeof parseFolderRequest>, { error: string }>): Promise<string | null> {
  const store = await SqliteRunStore.open(':memory:');
  try {
    const runs = localRunService({ config, store, host, checks: silentChecks });
    const outcome = await requestLocal(runs, request, 'local');
    return outcome.kind === 'queued' ? null : refusalLine(outcome, request);
  } finally {
    await store.close();
  }
}

function describe(task: ResolvedTask): string {
  const lines = [`  ${task.name} (${task.type})${task.description ? ` — ${task.description}` : ''}`];
  if (task.needs.length > 0) lines.push(`    needs: ${task.needs.join(', ')} (their outputs at /in/<task>)`);
  if (task.dockerfile) lines.push(`    dockerfile: ${task.dockerfile} (context ${task.context})`);
  if (task.procfile) lines.push(`    ${task.procfile} process ${task.process} in ${task.image}`);
  if (Object.keys(task.with).length > 0) lines.push(`    with: ${JSON.stringify(task.with)}`);
  for (const [name, spec] of Object.entries(task.params)) {
    const rules = [spec.required ? 'required' : null, spec.default !== undefined ? `default ${spec.default}` : null, spec.enum ? `one of ${spec.enum.join('|')}` : null, spec.pattern ? `matches ${spec.pattern}` : null].filter(Boolean);
    lines.push(`    param ${name} → TASK_PARAM_${name.toUpperCase()}${rules.length ? ` (${rules.join(', ')})` : ''}`);
  }
  const limits = [
    task.timeoutMs !== undefined ? `timeout ${formatDuration(task.timeoutMs)}` : null,
    task.resources?.cpus !== undefined ? `${task.resources.cpus} CPUs` : null,
    task.resources?.memory !== undefined ? `${formatSize(task.resources.memory)} memory` : null,
    task.network ? 'network' : null,
  ].filter(Boolean);
  if (limits.length > 0) lines.push(`    ${limits.join(', ')}`);
  return lines.join('\n');
}
