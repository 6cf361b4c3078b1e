/**
 * The `task-mgmt.yml` schema (README "Declaring tasks"), one zod schema with a doc comment per
 * field. `npm run schema` writes it as JSON Schema to `task-mgmt.schema.json` for editors.
 */
import { z } from 'zod';
import { durationSchema, sizeSchema } from '../runs/units.js';
import { compilePattern, maxPatternValueLength } from './param-pattern.js';
import { cronProblem } from '../schedules/cron.js';

export const taskNamePattern = /^[a-z0-9][a-z0-9_.-]{0,62}$/i;
const paramNamePattern = /^[a-z_][a-z0-9_]{0,62}$/i;

/** Tasks one manifest may declare (README "Security model": manifests are capped). */
export const maxTasks = 64;
/** Parameters one task may declare. */
export const maxParams = 32;
/** Cron expressions one task's `schedule:` may hold. */
export const maxSchedules = 16;

/*
 * Bounds on every string and list (README "Security model"): a manifest is read on every push
 * and `/run`, and what the worker thread that reads it accepts crosses to the event loop and
 * meets the task types' own checks there. Within the 256 KiB cap, a `with:` list of 26,000
 * items held the event loop for 150–330 ms (over a second on a busy machine).
 */
/** Characters of a path (`dockerfile`, `context`, `procfile`, a `review:` glob). */
export const maxPathChars = 1_024;
/** Characters of a name: `uses`, `process`, `image`. */
export const maxNameChars = 256;
/** Characters of a description (a reply quotes at most 200 of them). */
export const maxDescriptionChars = 1_000;
/** Values of one parameter's `enum`. */
export const maxEnumValues = 100;
/** Globs of `review:`. */
export const maxReviewGlobs = 100;
/** Keys of one mapping inside `with:`, `with:` itself included. */
export const maxWithKeys = 64;
/** Items of one list inside `with:` (`web/warc` seeds, `notify/email` recipients…). */
export const maxWithItems = 1_000;
/** Characters of one string inside `with:` (a long URL fits), and of a parameter's default. */
export const maxWithChars = 8_192;

/**
 * A path in the repository, relative to its root: no absolute path and no `..` segment, so a
 * manifest cannot name a file outside the checkout (a symbolic link out is refused when the
 * source is fetched, by the safe extraction).
 */
export function repoPathProblem(path: string): string | null {
  if (path === '') return 'is empty; name a path in the repository';
  if (/^[/\\]/.test(path)) return `must be a path inside the repository, relative to its root, not the absolute path \`${path}\``;
  if (path.split(/[/\\]/).includes('..')) return `must be a path inside the repository: \`${path}\` leaves it through \`..\``;
  return null;
}
const repoPath = z.string().max(maxPathChars).superRefine((path, ctx) => {
  const problem = repoPathProblem(path);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** A parameter `/run task key=value` may set; it reaches containers as `TASK_PARAM_<NAME>`. */
export const paramSpecSchema = z
  .object({
    /** Used when the command does not set it. */
    default: z.union([z.string().max(maxWithChars), z.number(), z.boolean()]).transform(String).optional(),
    /** A regular expression the whole value must match, in RE2 syntax (no backreferences or lookaround). */
    pattern: z
      .string()
      .max(maxPatternValueLength)
      .superRefine((pattern, ctx) => {
        const compiled = compilePattern(pattern);
        if (!compiled.ok) ctx.addIssue({ code: 'custom', message: compiled.reason });
      })
      .optional(),
    /** The only values allowed. */
    enum: z.array(z.union([z.string().max(maxPatternValueLength), z.number()]).transform(String)).min(1).max(maxEnumValues).optional(),
    /** The command must set it (a default makes no sense then). */
    required: z.boolean().optional(),
    /** Shown by `/help` and `task-mgmt validate`. */
    description: z.string().max(maxDescriptionChars).optional(),
  })
  .strict();
export type ParamSpec = z.infer<typeof paramSpecSchema>;

export const resourcesSchema = z
  .object({
    /** CPUs the container may use, e.g. 2 or 0.5. */
    cpus: z.number().positive().max(64).optional(),
    /** Memory limit, e.g. 4g or 512m (no swap). */
    memory: sizeSchema.optional(),
    /** Process limit. */
    pids: z.number().int().min(16).max(65536).optional(),
  })
  .strict();

/**
 * The bounds of `with:` whatever the type: the type's own schema checks the values after this, on
 * the event loop, so it sees at most maxWithKeys keys a mapping, maxWithItems items a list and
 * maxWithChars characters a string (nesting is capped for the whole manifest).
 */
function withProblems(value: unknown, path: (string | number)[], found: { path: (string | number)[]; message: string }[]): void {
  if (found.length > 0) return;
  if (typeof value === 'string') {
    if (value.length > maxWithChars) found.push({ path, message: `is ${value.length} characters long; a string in \`with:\` may have at most ${maxWithChars}` });
  } else if (Array.isArray(value)) {
    if (value.length > maxWithItems) found.push({ path, message: `has ${value.length} items; a list in \`with:\` may have at most ${maxWithItems}` });
    else value.forEach((item, index) => withProblems(item, [...path, index], found));
  } else if (typeof value === 'object' && value !== null) {
    const keys = Object.keys(value);
    if (keys.length > maxWithKeys) found.push({ path, message: `has ${keys.length} keys; a mapping in \`with:\` may have at most ${maxWithKeys}` });
    else for (const key of keys) withProblems((value as Record<string, unknown>)[key], [...path, key], found);
  }
}
const withSchema = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
  const found: { path: (string | number)[]; message: string }[] = [];
  withProblems(value, [], found);
  for (const problem of found) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
}).meta({ maxProperties: maxWithKeys });

export const taskSchema = z
  .object({
    /** A built-in task type (a folder of this project's `tasks/`), e.g. `ipfs/add-url`. */
    uses: z.string().max(maxNameChars).optional(),
    /** Parameters of the `uses` type (at most 64 keys a mapping, 1,000 items a list, 8,192 characters a string). */
    with: withSchema.optional(),
    /** A Dockerfile in the repository to build and run (the `container` type); no `..`, not absolute. */
    dockerfile: repoPath.optional(),
    /** Build context for `dockerfile`, relative to the repository root (default `.`); no `..`, not absolute. */
    context: repoPath.optional(),
    /** A Procfile in the repository (the `procfile` type), with `process` naming the entry; no `..`, not absolute. */
    procfile: repoPath.optional(),
    /** The Procfile process type to run. */
    process: z.string().max(maxNameChars).optional(),
    /** Base image for Procfile tasks (must already be on the Docker host). */
    image: z.string().max(maxNameChars).optional(),
    /** Tasks that must succeed first; their outputs are mounted read-only at `/in/<task>`. */
    needs: z.array(z.string().regex(taskNamePattern, 'is not a task name')).max(maxTasks).optional(),
    /** Parameters `/run <task> key=value` may set (at most 32). */
    params: z
      .record(z.string().regex(paramNamePattern, 'is not a parameter name (letters, digits and _)'), paramSpecSchema)
      .refine((params) => Object.keys(params).length <= maxParams, `declares more than ${maxParams} parameters, the most a task may have`)
      .meta({ maxProperties: maxParams })
      .optional(),
    /** Hard time limit, e.g. 90s, 30m, 6h, 2d. */
    timeout: durationSchema.optional(),
    resources: resourcesSchema.optional(),
    /** Network access for the container (default false); true needs the same review as any manifest change. */
    network: z.boolean().optional(),
    /** Shown by `/help` and `task-mgmt validate`. */
    description: z.string().max(maxDescriptionChars).optional(),
    /**
     * When the task runs by itself, at the default branch's HEAD, as the App: cron expressions
     * (minute hour day-of-month month day-of-week, UTC), or `{ cron, timezone }` for another time
     * zone. Read from the default branch's manifest only.
     */
    schedule: z
      .array(z.union([z.string().max(maxNameChars), z.object({ cron: z.string().max(maxNameChars), timezone: z.string().max(64) }).strict()]))
      .max(maxSchedules)
      .superRefine((items, ctx) => {
        items.forEach((item, index) => {
          const problem = cronProblem(typeof item === 'string' ? { cron: item, timezone: 'UTC' } : item);
          if (problem) ctx.addIssue({ code: 'custom', path: [index], message: problem });
        });
      })
      .optional(),
  })
  .strict()
  .superRefine((task, ctx) => {
    const kinds = [task.uses !== undefined, task.dockerfile !== undefined, task.procfile !== undefined].filter(Boolean).length;
    if (kinds !== 1) ctx.addIssue({ code: 'custom', message: 'needs exactly one of `uses`, `dockerfile` or `procfile`' });
    if (task.procfile !== undefined && task.process === undefined) {
      ctx.addIssue({ code: 'custom', path: ['process'], message: 'is required with `procfile` (the process type to run)' });
    }
  });
export type TaskSpec = z.infer<typeof taskSchema>;

export const manifestSchema = z
  .object({
    /** The manifest format; only 1 exists. */
    version: z.literal(1),
    /** The tasks, by name (`/run <name>`); at most 64. */
    tasks: z
      .record(z.string().regex(taskNamePattern, 'is not a task name (letters, digits, -, _, .)'), taskSchema)
      .refine((tasks) => Object.keys(tasks).length > 0, 'must declare at least one task')
      .refine((tasks) => Object.keys(tasks).length <= maxTasks, `declares more than ${maxTasks} tasks, the most a manifest may have`)
      .meta({ maxProperties: maxTasks }),
    /** How long outputs stay pinned, e.g. 14d. */
    pin: z.object({ ttl: durationSchema }).strict().optional(),
    /** Least role that may `/run` (default write). */
    permission: z.enum(['write', 'maintain', 'admin']).optional(),
    /**
     * More paths whose change needs a review like the manifest's own: picomatch globs (`**`, `{a,b}`,
     * dot-files too); no `..`, not absolute. When given, they replace "every file" for Procfile
     * tasks and Dockerfiles that copy their whole context (README "Declaring tasks").
     */
    review: z.array(repoPath).max(maxReviewGlobs).optional(),
    /** Cancel a pull request's queued and running runs when new commits are pushed (default true). */
    cancel_on_push: z.boolean().optional(),
  })
  .strict();
export type Manifest = z.infer<typeof manifestSchema>;

/** The JSON Schema of `task-mgmt.yml`, as editors read it (input side: sizes and durations as strings). */
export function manifestJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(manifestSchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://task-mgmt.dev/schema/task-mgmt.schema.json',
    title: 'task-mgmt.yml',
  };
}
