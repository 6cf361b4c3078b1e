/**
 * Reads a commit's task definition: `task-mgmt.yml`, else a `Dockerfile`, else a `Procfile`
 * (README "Declaring tasks"). Errors name the file, the line and column, and the field, so they
 * can be shown as a check run annotation on the offending line.
 */
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { z } from 'zod';
import type { TaskType } from '../../ports/task-type.js';
import { quote } from '../text/quote.js';
import { manifestSchema, taskNamePattern, type Manifest, type ParamSpec, type TaskSpec } from './manifest-schema.js';

export const manifestFile = 'task-mgmt.yml';

export interface ManifestError {
  file: string;
  line: number;
  column: number;
  /** Dotted path of the field, e.g. `tasks.process.timeout`. */
  field: string;
  message: string;
}

export interface ResolvedTask {
  name: string;
  /** Task type: a `uses:` name, or `container` / `procfile`. */
  type: string;
  /** Parameters of the type (`with:`), validated by the type's schema. */
  with: Record<string, unknown>;
  dockerfile?: string;
  context: string;
  procfile?: string;
  process?: string;
  image?: string;
  needs: string[];
  params: Record<string, ParamSpec>;
  timeoutMs?: number;
  resources?: { cpus?: number | undefined; memory?: number | undefined; pids?: number | undefined };
  network: boolean;
  description?: string;
}

export interface LoadedManifest {
  /** The file the tasks came from. */
  source: string;
  /** In `needs` order: every task after the tasks it needs. */
  tasks: ResolvedTask[];
  permission: 'write' | 'maintain' | 'admin';
  pinTtlMs?: number;
  /** Paths whose change needs a review: the manifest, the files it names, and `review:`. */
  reviewPaths: string[];
  /** The manifest's own `review:` globs; when given, they replace "every file" for tasks that read the whole repository. */
  review?: string[];
  cancelOnPush: boolean;
}

export type ManifestResult = { ok: true; manifest: LoadedManifest } | { ok: false; errors: ManifestError[] };

export type TaskTypeCatalog = ReadonlyMap<string, Pick<TaskType, 'name' | 'params'>>;

/** Which file defines the tasks of a commit, from the names at its root. */
export function manifestSource(rootNames: readonly string[]): 'task-mgmt.yml' | 'Dockerfile' | 'Procfile' | null {
  const names = new Set(rootNames);
  if (names.has(manifestFile)) return manifestFile;
  if (names.has('Dockerfile')) return 'Dockerfile';
  if (names.has('Procfile')) return 'Procfile';
  return null;
}

/** A root Dockerfile alone: one task named `default`. */
export function dockerfileManifest(): LoadedManifest {
  return {
    source: 'Dockerfile',
    tasks: [baseTask('default', { type: 'container', dockerfile: 'Dockerfile' })],
    permission: 'write',
    reviewPaths: ['Dockerfile'],
    cancelOnPush: true,
  };
}

/** A root Procfile alone: one task per process type, run in `image`. */
export function procfileManifest(text: string, image: string): ManifestResult {
  const tasks: ResolvedTask[] = [];
  const errors: ManifestError[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const match = /^([A-Za-z0-9_-]+):\s*(.+)$/.exec(line);
    if (!match) {
      errors.push({ file: 'Procfile', line: index + 1, column: 1, field: '', message: 'is not `<process>: <command>`' });
      return;
    }
    const name = match[1]!;
    if (!taskNamePattern.test(name)) {
      errors.push({ file: 'Procfile', line: index + 1, column: 1, field: name, message: 'is not a task name' });
      return;
    }
    tasks.push(baseTask(name, { type: 'procfile', procfile: 'Procfile', process: name, image }));
  });
  if (tasks.length === 0 && errors.length === 0) errors.push({ file: 'Procfile', line: 1, column: 1, field: '', message: 'declares no process' });
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, manifest: { source: 'Procfile', tasks, permission: 'write', reviewPaths: ['Procfile'], cancelOnPush: true } };
}

export function parseManifest(text: string, catalog: TaskTypeCatalog, options: { defaultImage?: string } = {}): ManifestResult {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => (offset === undefined ? { line: 1, col: 1 } : lineCounter.linePos(offset));
  if (document.errors.length > 0) {
    return {
      ok: false,
      errors: document.errors.map((error) => {
        const { line, col } = lineCounter.linePos(error.pos[0]);
        return { file: manifestFile, line, column: col, field: '', message: error.message.split('\n')[0]! };
      }),
    };
  }
  const parsed = manifestSchema.safeParse(document.toJS());
  if (!parsed.success) return { ok: false, errors: issuesToErrors(parsed.error.issues, document, at) };
  const manifest = parsed.data;

  const errors: ManifestError[] = [];
  const fail = (path: (string | number)[], message: string) => {
    const { line, col } = locate(document, path, at);
    errors.push({ file: manifestFile, line, column: col, field: path.join('.'), message });
  };
  const tasks: ResolvedTask[] = [];
  for (const [name, spec] of Object.entries(manifest.tasks)) {
    const resolved = resolveTask(name, spec, options.defaultImage);
    if (spec.uses !== undefined) {
      const type = catalog.get(spec.uses);
      if (!type) {
        fail(['tasks', name, 'uses'], `\`${spec.uses}\` is not a task type; the types are ${[...catalog.keys()].map((k) => `\`${k}\``).join(', ')}`);
      } else {
        const checked = type.params.safeParse(spec.with ?? {});
        if (!checked.success) for (const issue of checked.error.issues) fail(['tasks', name, 'with', ...issue.path.map(String)], issue.message);
      }
    } else if (spec.with !== undefined) {
      fail(['tasks', name, 'with'], 'only a task that `uses` a type takes `with:`; use `params:` for container tasks');
    }
    for (const needed of resolved.needs) {
      if (!(needed in manifest.tasks)) fail(['tasks', name, 'needs'], `needs \`${needed}\`, which is not a task of this manifest`);
      if (needed === name) fail(['tasks', name, 'needs'], 'a task cannot need itself');
    }
    for (const [param, paramSpec] of Object.entries(resolved.params)) {
      if (paramSpec.default !== undefined) {
        const problem = checkParamValue(param, paramSpec, paramSpec.default);
        if (problem) fail(['tasks', name, 'params', param, 'default'], problem);
      }
    }
    tasks.push(resolved);
  }
  const ordered = orderTasks(tasks);
  if ('cycle' in ordered) fail(['tasks', ordered.cycle[0]!, 'needs'], `\`needs\` form a cycle: ${ordered.cycle.join(' → ')}`);
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, manifest: loaded(manifest, (ordered as { tasks: ResolvedTask[] }).tasks) };
}

function loaded(manifest: Manifest, tasks: ResolvedTask[]): LoadedManifest {
  const named = new Set<string>([manifestFile, ...(manifest.review ?? [])]);
  for (const task of tasks) {
    if (task.dockerfile) named.add(task.dockerfile);
    if (task.procfile) named.add(task.procfile);
  }
  return {
    source: manifestFile,
    tasks,
    permission: manifest.permission ?? 'write',
    ...(manifest.pin ? { pinTtlMs: manifest.pin.ttl } : {}),
    reviewPaths: [...named],
    ...(manifest.review && manifest.review.length > 0 ? { review: manifest.review } : {}),
    cancelOnPush: manifest.cancel_on_push ?? true,
  };
}

function baseTask(name: string, fields: Partial<ResolvedTask> & { type: string }): ResolvedTask {
  return { name, with: {}, context: '.', needs: [], params: {}, network: false, ...fields };
}

function resolveTask(name: string, spec: TaskSpec, defaultImage = 'busybox:latest'): ResolvedTask {
  const type = spec.uses ?? (spec.dockerfile !== undefined ? 'container' : 'procfile');
  return {
    name,
    type,
    with: spec.with ?? {},
    ...(spec.dockerfile !== undefined ? { dockerfile: spec.dockerfile } : {}),
    context: spec.context ?? '.',
    ...(spec.procfile !== undefined ? { procfile: spec.procfile, process: spec.process!, image: spec.image ?? defaultImage } : {}),
    needs: [...new Set(spec.needs ?? [])],
    params: spec.params ?? {},
    ...(spec.timeout !== undefined ? { timeoutMs: spec.timeout } : {}),
    ...(spec.resources ? { resources: spec.resources } : {}),
    network: spec.network ?? false,
    ...(spec.description !== undefined ? { description: spec.description } : {}),
  };
}

/** Tasks in `needs` order (Kahn's algorithm, keeping the manifest's order among equals), or a cycle. */
export function orderTasks(tasks: readonly ResolvedTask[]): { tasks: ResolvedTask[] } | { cycle: string[] } {
  const byName = new Map(tasks.map((task) => [task.name, task]));
  const done = new Set<string>();
  const ordered: ResolvedTask[] = [];
  while (ordered.length < tasks.length) {
    const next = tasks.find((task) => !done.has(task.name) && task.needs.every((n) => done.has(n) || !byName.has(n)));
    if (!next) return { cycle: findCycle(tasks.filter((task) => !done.has(task.name)), byName) };
    done.add(next.name);
    ordered.push(next);
  }
  return { tasks: ordered };
}

function findCycle(remaining: ResolvedTask[], byName: Map<string, ResolvedTask>): string[] {
  const start = remaining[0]!;
  const path: string[] = [];
  let current: ResolvedTask | undefined = start;
  while (current && !path.includes(current.name)) {
    path.push(current.name);
    current = current.needs.map((n) => byName.get(n)).find((t) => t && remaining.includes(t));
  }
  if (!current) return path;
  return [...path.slice(path.indexOf(current.name)), current.name];
}

/** `/run x` runs x and everything it needs; `/run` runs every task. Order is kept. */
export function selectTasks(manifest: LoadedManifest, name: string | null): ResolvedTask[] | null {
  if (name === null) return manifest.tasks;
  const byName = new Map(manifest.tasks.map((task) => [task.name, task]));
  if (!byName.has(name)) return null;
  const wanted = new Set<string>();
  const visit = (taskName: string) => {
    if (wanted.has(taskName)) return;
    wanted.add(taskName);
    for (const needed of byName.get(taskName)?.needs ?? []) visit(needed);
  };
  visit(name);
  return manifest.tasks.filter((task) => wanted.has(task.name));
}

/** Checks `/run` parameters against a task's declared ones; returns the full set with defaults. */
export function resolveParams(
  task: ResolvedTask,
  given: Record<string, string>,
): { ok: true; params: Record<string, string> } | { ok: false; reason: string } {
  const declared = Object.fromEntries(Object.entries(task.params).map(([key, spec]) => [key.toLowerCase(), { key, spec }]));
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(given)) {
    const entry = declared[key.toLowerCase()];
    if (!entry) {
      const known = Object.keys(task.params);
      return {
        ok: false,
        reason: `the task ${quote(task.name)} has no parameter ${quote(key)}; ${known.length ? `its parameters are ${known.map((k) => quote(k)).join(', ')}` : 'it takes none'}.`,
      };
    }
    const problem = checkParamValue(entry.key, entry.spec, value);
    if (problem) return { ok: false, reason: `parameter ${quote(entry.key)} of ${quote(task.name)} ${problem}.` };
    params[entry.key.toLowerCase()] = value;
  }
  for (const { key, spec } of Object.values(declared)) {
    const lower = key.toLowerCase();
    if (params[lower] !== undefined) continue;
    if (spec.default !== undefined) params[lower] = spec.default;
    else if (spec.required) return { ok: false, reason: `the task ${quote(task.name)} needs ${quote(`${key}=…`)} (a required parameter).` };
  }
  return { ok: true, params };
}

function checkParamValue(_key: string, spec: ParamSpec, value: string): string | null {
  if (spec.enum && !spec.enum.includes(value)) return `must be one of ${spec.enum.map((v) => quote(v)).join(', ')}, not ${quote(value)}`;
  if (spec.pattern && !new RegExp(`^(?:${spec.pattern})$`).test(value)) return `must match ${quote(spec.pattern)}, and ${quote(value)} does not`;
  return null;
}

function issuesToErrors(
  issues: readonly z.core.$ZodIssue[],
  document: Document,
  at: (offset: number | undefined) => { line: number; col: number },
): ManifestError[] {
  return issues.map((issue) => {
    const path = issue.path.map(String);
    const unknownKey = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
    const { line, col } = locate(document, unknownKey ? [...path, unknownKey] : path, at, Boolean(unknownKey));
    const field = (unknownKey ? [...path, unknownKey] : path).join('.');
    return { file: manifestFile, line, column: col, field, message: issue.message };
  });
}

/** The position of a path in the YAML document, or of its closest existing parent. */
function locate(
  document: Document,
  path: (string | number)[],
  at: (offset: number | undefined) => { line: number; col: number },
  key = false,
): { line: number; col: number } {
  for (let depth = path.length; depth >= 0; depth -= 1) {
    const prefix = path.slice(0, depth);
    if (key && depth === path.length && prefix.length > 0) {
      const parent = document.getIn(prefix.slice(0, -1), true) as { items?: { key?: unknown }[] } | undefined;
      const pair = parent?.items?.find((item) => isNode(item.key) && (item.key as { value?: unknown }).value === prefix[prefix.length - 1]);
      if (pair && isNode(pair.key) && pair.key.range) return at(pair.key.range[0]);
    }
    const node = prefix.length === 0 ? document.contents : document.getIn(prefix, true);
    if (isNode(node) && node.range) return at(node.range[0]);
  }
  return { line: 1, col: 1 };
}
