/**
 * Reads a commit's task definition: `task-mgmt.yml`, else a `Dockerfile`, else a `Procfile`
 * (README "Declaring tasks"). Errors name the file, the line and column, and the field, so they
 * can be shown as a check run annotation on the offending line.
 */
import { LineCounter, parseDocument, isMap, isNode, isScalar, isSeq, visit, type Document } from 'yaml';
import type { z } from 'zod';
import type { TaskType } from '../../ports/task-type.js';
import { quote } from '../text/quote.js';
import type { CronSpec } from '../schedules/cron.js';
import { manifestSchema, maxParams, maxTasks, repoPathProblem, taskNamePattern, type Manifest, type ParamSpec, type TaskSpec } from './manifest-schema.js';
import { compilePattern, maxManifestPatterns, maxManifestPatternSize, maxPatternValueLength, patternSize } from './param-pattern.js';

export const manifestFile = 'task-mgmt.yml';

/** The largest `task-mgmt.yml` or `Procfile` read, in bytes (README "Security model"). */
export const maxManifestBytes = 256 * 1024;
/**
 * The deepest nesting of YAML collections: the `yaml` parser's time grows with the square of the
 * depth, and 100,000 nested `[` exhaust the heap and end the process.
 */
export const maxNesting = 64;
/**
 * How many times aliases may be expanded, relative to the document's size (the `yaml` package's
 * `maxAliasCount`, its default made explicit): a "billion laughs" document is refused.
 */
export const maxAliasCount = 100;
/**
 * Values a manifest may hold in all (each scalar, list and mapping counts one), checked before the
 * schema: the per-list bounds of the schema alone would let 256 KiB spread 80,000 values over
 * many lists, and all a manifest holds crosses from the worker thread to the event loop.
 */
export const maxManifestValues = 10_000;
/**
 * Values the `with:` of all tasks may hold together: the task types check them on the event loop,
 * and a type's check of a URL takes tens of microseconds. `web/warc` takes up to 1,000 seeds.
 */
export const maxWithValues = 2_000;

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
  /** When it runs by itself on the default branch (README "Schedules"). */
  schedule?: CronSpec[];
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

/** The files that may define the tasks of a commit, at its root, in the order they are looked up: the first present wins. */
export const manifestSources = [manifestFile, 'Dockerfile', 'Procfile'] as const;

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
  const tooLarge = sizeProblem('Procfile', text);
  if (tooLarge) return { ok: false, errors: [tooLarge] };
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
  const read = readManifestYaml(text);
  if (!read.ok) return read;
  return checkManifest(read.raw, read.locate, catalog, options);
}

/** Where a path of the parsed manifest is in its text (with `key`, where its key is), or its closest existing parent. */
export type ManifestLocator = (path: (string | number)[], key?: boolean) => { line: number; col: number };

/**
 * The YAML → JS step of parseManifest, the part whose time grows with the text (README "Security
 * model"): the size and nesting caps, syntax, duplicate keys and aliases. `manifest-yaml-worker.ts`
 * runs it off the event loop.
 */
export function readManifestYaml(
  text: string,
): { ok: true; raw: unknown; document: Document; at: (offset: number) => { line: number; col: number }; locate: ManifestLocator } | { ok: false; errors: ManifestError[] } {
  // Untrusted text: bounded before the YAML parser sees it (README "Security model").
  const tooLarge = sizeProblem(manifestFile, text);
  if (tooLarge) return { ok: false, errors: [tooLarge] };
  const tooDeep = nestingProblem(text);
  if (tooDeep !== null) {
    const line = text.slice(0, tooDeep).split('\n').length;
    const column = tooDeep - text.lastIndexOf('\n', tooDeep - 1);
    return { ok: false, errors: [{ file: manifestFile, line, column, field: '', message: `nests collections more than ${maxNesting} levels deep` }] };
  }
  const lineCounter = new LineCounter();
  // Duplicate keys are found below in one pass: the parser's own check compares every pair of keys.
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const at = (offset: number | undefined) => (offset === undefined ? { line: 1, col: 1 } : lineCounter.linePos(offset));
  const syntax = document.errors.map((error) => ({ offset: error.pos[0], message: error.message.split('\n')[0]! }));
  if (syntax.length === 0) syntax.push(...duplicateKeys(document));
  if (syntax.length > 0) {
    return {
      ok: false,
      errors: syntax.map(({ offset, message }) => {
        const { line, col } = at(offset);
        return { file: manifestFile, line, column: col, field: '', message };
      }),
    };
  }
  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount });
  } catch (error) {
    // `yaml` throws a ReferenceError when aliases expand past maxAliasCount.
    const { line, col } = at(firstAlias(document));
    const why = error instanceof Error ? error.message : String(error);
    return { ok: false, errors: [{ file: manifestFile, line, column: col, field: '', message: `its aliases expand too far (${why})` }] };
  }
  return { ok: true, raw, document, at, locate: (path, key = false) => locate(document, path, at, key) };
}

/**
 * The positions a ManifestLocator answers after the schema's check — the root and everything under
 * `tasks` — by path, so that the document itself need not cross threads: `n` is the node's start,
 * `k` its key's; each segment of a path ends with a NUL.
 */
export type ManifestPlaces = Record<string, { n?: [number, number]; k?: [number, number] }>;

export function manifestPlaces(document: Document, at: (offset: number) => { line: number; col: number }): ManifestPlaces {
  const places: ManifestPlaces = Object.create(null) as ManifestPlaces;
  const pos = (node: unknown): [number, number] | undefined => {
    if (!isNode(node) || !node.range) return undefined;
    const { line, col } = at(node.range[0]);
    return [line, col];
  };
  // The same lookups as `document.getIn(path, true)`: string keys of scalars, item indexes, first match.
  const walk = (node: unknown, path: string) => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isScalar(pair.key) || typeof pair.key.value !== 'string') continue;
        const at = `${path}${pair.key.value}\0`;
        if (places[at] !== undefined) continue;
        places[at] = { n: pos(pair.value), k: pos(pair.key) };
        walk(pair.value, at);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => {
        const at = `${path}${index}\0`;
        places[at] = { n: pos(item) };
        walk(item, at);
      });
    }
  };
  // Past the schema (which the worker checks), only the task types' checks ask for places, all under `tasks`.
  places[''] = { n: pos(document.contents) };
  const tasks = isMap(document.contents) ? document.contents.items.find((pair) => isScalar(pair.key) && pair.key.value === 'tasks') : undefined;
  if (tasks) {
    places['tasks\0'] = { n: pos(tasks.value), k: pos(tasks.key) };
    walk(tasks.value, 'tasks\0');
  }
  return places;
}

/** A ManifestLocator answering from manifestPlaces, as `locate` answers from the document. */
export function placesLocator(places: ManifestPlaces): ManifestLocator {
  const key = (path: (string | number)[]) => path.map((segment) => `${segment}\0`).join('');
  return (path, byKey = false) => {
    for (let depth = path.length; depth >= 0; depth -= 1) {
      const place = places[key(path.slice(0, depth))];
      if (byKey && depth === path.length && depth > 0 && place?.k) return { line: place.k[0], col: place.k[1] };
      if (place?.n) return { line: place.n[0], col: place.n[1] };
    }
    return { line: 1, col: 1 };
  };
}

/** The caps on counts and the schema: the checks that need no task types, which the YAML worker runs too. */
export function checkManifestShape(raw: unknown, locate: ManifestLocator): { ok: true; manifest: Manifest } | { ok: false; errors: ManifestError[] } {
  const errors: ManifestError[] = [];
  // Counts first, so that no more than the caps is ever validated or compiled.
  for (const [path, message] of limitProblems(raw)) {
    const { line, col } = locate(path);
    errors.push({ file: manifestFile, line, column: col, field: path.join('.'), message });
  }
  if (errors.length > 0) return { ok: false, errors };
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, errors: issuesToErrors(parsed.error.issues, locate) };
  return { ok: true, manifest: parsed.data };
}

/** The checks of parseManifest after the YAML step: the caps on counts, the schema, the task types. */
export function checkManifest(raw: unknown, locate: ManifestLocator, catalog: TaskTypeCatalog, options: { defaultImage?: string } = {}): ManifestResult {
  const shaped = checkManifestShape(raw, locate);
  if (!shaped.ok) return shaped;
  const manifest = shaped.manifest;
  const errors: ManifestError[] = [];
  const fail = (path: (string | number)[], message: string) => {
    const { line, col } = locate(path);
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
        else Object.assign(resolved, filesFromWith(spec.uses, spec.with ?? {}, options.defaultImage, (field, problem) => fail(['tasks', name, 'with', field], problem)));
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
    ...(spec.schedule !== undefined && spec.schedule.length > 0
      ? { schedule: spec.schedule.map((item) => (typeof item === 'string' ? { cron: item, timezone: 'UTC' } : item)) }
      : {}),
  };
}

/**
 * What a `uses: container` or `uses: procfile` task names in `with:`, taken as `dockerfile:` and
 * `context:`, or `procfile:`, `process:` and `image:` would be: the review gate then counts that
 * Dockerfile or Procfile (and what it copies) as the task's files, and the worker builds or runs
 * exactly it. (The worker built the root Dockerfile whatever `with: { dockerfile }` said.)
 */
function filesFromWith(type: string, given: Record<string, unknown>, defaultImage = 'busybox:latest', fail: (field: string, problem: string) => void): Partial<ResolvedTask> {
  const path = (field: string, fallback: string): string => {
    const value = given[field];
    if (typeof value !== 'string') return fallback;
    const problem = repoPathProblem(value);
    if (problem !== null) fail(field, problem);
    return value;
  };
  const text = (field: string, fallback: string): string => (typeof given[field] === 'string' ? (given[field] as string) : fallback);
  if (type === 'container') return { dockerfile: path('dockerfile', 'Dockerfile'), context: path('context', '.') };
  if (type === 'procfile') return { procfile: path('procfile', 'Procfile'), process: text('process', ''), image: text('image', defaultImage) };
  return {};
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
  if (spec.pattern !== undefined) {
    if (value.length > maxPatternValueLength) return `is ${value.length} characters long; a value checked against a pattern may have at most ${maxPatternValueLength}`;
    const pattern = compilePattern(spec.pattern);
    if (!pattern.ok) return `has a pattern that ${pattern.reason}`;
    if (!pattern.matches(value)) return `must match ${quote(spec.pattern)}, and ${quote(value)} does not`;
  }
  return null;
}

function sizeProblem(file: string, text: string): ManifestError | null {
  // Characters first: UTF-8 takes at least one byte for each, so most texts need no encoding.
  if (text.length <= maxManifestBytes / 3) return null;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= maxManifestBytes) return null;
  return { file, line: 1, column: 1, field: '', message: `is ${Math.ceil(bytes / 1024)} KiB; a task definition may have at most ${maxManifestBytes / 1024} KiB` };
}

/**
 * The offset where collections nest deeper than maxNesting, counted without parsing: every `[`
 * and `{` opens a level until its `]` or `}` (brackets inside strings count too, which only ever
 * overestimates), and `- ` or `? ` indicators one after another on a line (`- - - x`) open one
 * each. Indentation alone cannot nest deep within the size cap (each level needs a longer line).
 */
function nestingProblem(text: string): number | null {
  let flow = 0;
  for (let i = 0; i < text.length; i += 1) {
    const char = text.charCodeAt(i);
    if (char === 0x5b || char === 0x7b) {
      flow += 1;
      if (flow > maxNesting) return i;
    } else if ((char === 0x5d || char === 0x7d) && flow > 0) flow -= 1;
  }
  const compact = new RegExp(`^[ \\t]*(?:[-?][ \\t]+){${maxNesting + 1}}`, 'm').exec(text);
  return compact ? compact.index : null;
}

/** Duplicate keys of every mapping, in one pass per mapping (YAML 1.2: keys are unique). */
function duplicateKeys(document: Document): { offset: number; message: string }[] {
  const found: { offset: number; message: string }[] = [];
  visit(document, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        if (seen.has(key)) found.push({ offset: isNode(pair.key) && pair.key.range ? pair.key.range[0] : 0, message: 'Map keys must be unique' });
        seen.add(key);
      }
    },
  });
  return found;
}

function firstAlias(document: Document): number | undefined {
  let offset: number | undefined;
  visit(document, {
    Alias(_, alias) {
      offset = alias.range?.[0];
      return visit.BREAK;
    },
  });
  return offset;
}

/** The caps on counts, checked on the parsed document before the schema sees it. */
function limitProblems(raw: unknown): [(string | number)[], string][] {
  const problems: [(string | number)[], string][] = [];
  const crowded = valueProblem(raw);
  if (crowded !== null) return [crowded];
  const tasks = isRecord(raw) && isRecord(raw.tasks) ? raw.tasks : {};
  const names = Object.keys(tasks);
  if (names.length > maxTasks) return [[['tasks'], `declares ${names.length} tasks; a manifest may declare at most ${maxTasks}`]];
  let patterns = 0;
  let size = 0;
  for (const name of names) {
    const task = tasks[name];
    const params = isRecord(task) && isRecord(task.params) ? task.params : {};
    const keys = Object.keys(params);
    if (keys.length > maxParams) {
      problems.push([['tasks', name, 'params'], `declares ${keys.length} parameters; a task may declare at most ${maxParams}`]);
      continue;
    }
    for (const key of keys) {
      const spec = params[key];
      const pattern = isRecord(spec) ? spec.pattern : undefined;
      if (typeof pattern !== 'string') continue;
      patterns += 1;
      size += patternSize(pattern);
      const field = ['tasks', name, 'params', key, 'pattern'];
      if (patterns > maxManifestPatterns) return [...problems, [field, `is pattern number ${patterns}; a manifest may have at most ${maxManifestPatterns}`]];
      if (size > maxManifestPatternSize) {
        return [...problems, [field, `brings the manifest's patterns to about ${size} steps; together they may have at most ${maxManifestPatternSize}`]];
      }
    }
  }
  return problems;
}

/**
 * Where a walk of `value` (at `path`) passes `cap` values, counting on from `counter.count` — the
 * path of the list or mapping in which it does — or the path of an alias that refers to a
 * collection holding it (`&x [*x]`), which would hold values without end; null when neither. An
 * alias counts its values each time it is used.
 */
function crowdedCollection(
  value: unknown,
  path: (string | number)[],
  counter: { count: number },
  cap: number,
): { path: (string | number)[]; cyclic: boolean } | null {
  const at = [...path];
  const holding = new Set<object>();
  const walk = (item: unknown): 'crowded' | 'cyclic' | null => {
    counter.count += 1;
    if (counter.count > cap) {
      at.pop();
      return 'crowded';
    }
    if (typeof item !== 'object' || item === null) return null;
    if (holding.has(item)) return 'cyclic';
    holding.add(item);
    const keys: (string | number)[] = Array.isArray(item) ? Array.from(item.keys()) : Object.keys(item);
    for (const key of keys) {
      at.push(key);
      const found = walk((item as Record<string | number, unknown>)[key]);
      if (found !== null) return found;
      at.pop();
    }
    holding.delete(item);
    return null;
  };
  const found = walk(value);
  return found === null ? null : { path: at, cyclic: found === 'cyclic' };
}

/** The caps on what a manifest holds: maxManifestValues in all, maxWithValues in its tasks' `with:`. */
function valueProblem(raw: unknown): [(string | number)[], string] | null {
  const cyclic = 'is an alias of a collection that holds it, which would hold values without end';
  const all = crowdedCollection(raw, [], { count: 0 }, maxManifestValues);
  if (all !== null) return [all.path, all.cyclic ? cyclic : `brings the manifest past ${maxManifestValues} values; a manifest may hold at most ${maxManifestValues}`];
  const tasks = isRecord(raw) && isRecord(raw.tasks) ? raw.tasks : {};
  const counter = { count: 0 };
  for (const name of Object.keys(tasks)) {
    const task = tasks[name];
    if (!isRecord(task) || task.with === undefined) continue;
    // The values of `with:` itself, not the mapping: a task's empty `with:` costs nothing.
    counter.count -= 1;
    const crowded = crowdedCollection(task.with, ['tasks', name, 'with'], counter, maxWithValues);
    if (crowded !== null) return [crowded.path, `brings the \`with:\` values of the manifest past ${maxWithValues}; its tasks' \`with:\` may hold at most ${maxWithValues} values together`];
  }
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function issuesToErrors(issues: readonly z.core.$ZodIssue[], locate: ManifestLocator): ManifestError[] {
  return issues.map((issue) => {
    const path = issue.path.map(String);
    const unknownKey = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
    const { line, col } = locate(unknownKey ? [...path, unknownKey] : path, Boolean(unknownKey));
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
