/**
 * The org policy (README "Org policy"): `.github/task-mgmt.yml` in the org's (or user's) `.github`
 * repository sets the outer bounds of every repository of the installation. A repository's
 * manifest can only tighten them: a request beyond one is refused before it is queued, naming the
 * rule and the file that sets it. An org file that does not parse or validate refuses every run
 * of the org (fail closed), saying where the error is.
 *
 * This file holds the schema, the parser and the pure decisions; `org-policies.ts` reads and
 * caches the file per owner.
 */
import { LineCounter, parseDocument, isNode } from 'yaml';
import { z } from 'zod';
import type { ResolvedTask } from '../manifest/load-manifest.js';
import { durationSchema, formatSize, sizeSchema } from '../runs/units.js';
import { formatTtl } from '../pins/pin-ttl.js';
import { quote } from '../text/quote.js';
import { roleAtLeast, type Role } from './roles.js';
import type { RequiredRole } from '../runs/run.js';

/** Where the org policy lives: this path in the repository `<owner>/.github`, at its default branch's HEAD. */
export const orgPolicyRepo = '.github';
export const orgPolicyPath = '.github/task-mgmt.yml';
/** The largest org policy file read, in bytes. */
export const maxOrgPolicyBytes = 64 * 1024;

const role = z.enum(['write', 'maintain', 'admin']);
const name = z.string().min(1).max(256);

export const orgPolicySchema = z
  .object({
    /** The org policy format; only 1 exists. */
    version: z.literal(1),
    allow: z
      .object({
        /** Task types that may run (`container`, `procfile`, or a `uses:` name); others are refused. Unset: every type. */
        types: z.array(name).max(256).optional(),
        /** Whether a task may ask for `network: true` (default true: the deployment decides). */
        network: z.boolean().optional(),
        /** Whether tasks may run on a `schedule:` (default true). */
        schedules: z.boolean().optional(),
      })
      .strict()
      .optional(),
    limits: z
      .object({
        /** Most CPUs a task may ask for. */
        cpus: z.number().positive().max(1024).optional(),
        /** Most memory a task may ask for, e.g. 4g. */
        memory: sizeSchema.optional(),
        /** Most processes a task may ask for. */
        pids: z.number().int().min(16).optional(),
        /** Longest `timeout` a task may ask for, e.g. 12h. */
        timeout: durationSchema.optional(),
        /** Most bytes a run may leave in `/out`, e.g. 50GiB. */
        output: sizeSchema.optional(),
        /** Longest `pin.ttl` a manifest may ask for, e.g. 90d. */
        pin_ttl: durationSchema.optional(),
        /** Shortest time between two firings of a `schedule:`, e.g. 1h. */
        schedule_every: durationSchema.optional(),
      })
      .strict()
      .optional(),
    roles: z
      .object({
        /** Least role that may `/run` any task (write | maintain | admin). */
        run: role.optional(),
        /** Least role per task type, e.g. `notify/email: maintain`. */
        types: z.record(name, role).optional(),
      })
      .strict()
      .optional(),
    /** Which repositories may run tasks: `include` (only these) or `exclude` (all but these), as `owner/name` or `name`. */
    repositories: z.union([z.object({ include: z.array(name).max(10_000) }).strict(), z.object({ exclude: z.array(name).max(10_000) }).strict()]).optional(),
    /** Runs at once per repository. */
    concurrency: z.number().int().min(1).max(1000).optional(),
    /** Registries a Dockerfile's `FROM` may pull from (host or host:port); combined with ALLOWED_REGISTRIES by intersection. */
    registries: z.array(name).max(256).optional(),
  })
  .strict();

export type OrgPolicy = z.infer<typeof orgPolicySchema>;

/** The JSON Schema of the org file, as editors read it. */
export function orgPolicyJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(orgPolicySchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://task-mgmt.dev/schema/task-mgmt-org.schema.json',
    title: '.github/task-mgmt.yml (org policy)',
  };
}

/** What is known of an owner's org policy. `where` names the file, e.g. `octo-org/.github: .github/task-mgmt.yml`. */
export type OrgPolicyState =
  /** No `.github` repository, one the installation cannot read, or no policy file in it: only the deployment's bounds. */
  | { kind: 'none'; why: string }
  /** The file exists but is not a valid policy: every run of the owner is refused. */
  | { kind: 'invalid'; where: string; line: number; field: string; message: string; digest: string }
  | { kind: 'policy'; where: string; policy: OrgPolicy; digest: string };

export type OrgPolicyParse = { ok: true; policy: OrgPolicy } | { ok: false; line: number; field: string; message: string };

/** Parses and validates an org policy file's text. Errors carry the line and the dotted field. */
export function parseOrgPolicy(text: string): OrgPolicyParse {
  if (Buffer.byteLength(text) > maxOrgPolicyBytes) return { ok: false, line: 1, field: '', message: `is larger than ${maxOrgPolicyBytes / 1024} KiB` };
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  if (document.errors.length > 0) {
    const error = document.errors[0]!;
    return { ok: false, line: lineCounter.linePos(error.pos[0]).line, field: '', message: error.message.split('\n')[0]! };
  }
  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    return { ok: false, line: 1, field: '', message: `its aliases expand too far (${error instanceof Error ? error.message : String(error)})` };
  }
  const parsed = orgPolicySchema.safeParse(raw ?? {});
  if (parsed.success) return { ok: true, policy: parsed.data };
  const issue = parsed.error.issues[0]!;
  const path = issue.path.filter((segment): segment is string | number => typeof segment !== 'symbol');
  // The issue's own node, else its closest parent that exists.
  let line = 1;
  for (let depth = path.length; depth >= 0; depth -= 1) {
    const node = document.getIn(path.slice(0, depth), true);
    if (isNode(node) && node.range) {
      line = lineCounter.linePos(node.range[0]).line;
      break;
    }
  }
  return { ok: false, line, field: path.join('.'), message: issue.message };
}

/** One line for a person: where an invalid org policy's error is. */
export function invalidOrgPolicyLine(state: Extract<OrgPolicyState, { kind: 'invalid' }>): string {
  return `the org policy ${state.where} is invalid (line ${state.line}${state.field ? `, \`${state.field}\`` : ''}: ${quote(state.message)}), so no task of this organisation runs until it is fixed`;
}

/** A rule of the org policy, named as a person finds it in the file. */
function rule(state: Extract<OrgPolicyState, { kind: 'policy' }>, field: string): string {
  return `\`${field}\` of the org policy ${state.where}`;
}

function repoListed(list: readonly string[], repo: { owner: string; name: string }): boolean {
  const full = `${repo.owner}/${repo.name}`.toLowerCase();
  return list.some((entry) => {
    const e = entry.toLowerCase();
    return e === full || e === repo.name.toLowerCase();
  });
}

const roleRank = (r: RequiredRole): number => ['write', 'maintain', 'admin'].indexOf(r);

/** The strictest of the roles the manifest and the org policy require for these tasks, and which rule sets it. */
export function requiredRoleFor(
  state: OrgPolicyState,
  tasks: readonly ResolvedTask[],
  manifestRole: RequiredRole,
): { role: RequiredRole; rule: string | null } {
  let best: { role: RequiredRole; rule: string | null } = { role: manifestRole, rule: null };
  if (state.kind !== 'policy') return best;
  const consider = (candidate: RequiredRole | undefined, field: string) => {
    if (candidate && roleRank(candidate) > roleRank(best.role)) best = { role: candidate, rule: rule(state, field) };
  };
  consider(state.policy.roles?.run, 'roles.run');
  for (const task of tasks) consider(state.policy.roles?.types?.[task.type], `roles.types.${task.type}`);
  return best;
}

export interface OrgCheckInput {
  repo: { owner: string; name: string };
  tasks: readonly ResolvedTask[];
  /** The manifest's `pin.ttl`, when it sets one. */
  pinTtlMs?: number | undefined;
  /** The requester's role on the repository (admin for the App and service tokens). */
  role: Role;
  actor: string;
  manifestRole: RequiredRole;
  /** A scheduled firing: `allow.schedules` applies. */
  scheduled?: boolean;
}

/**
 * Why the org policy refuses this request, in one sentence naming the rule and its file, or null
 * when it allows it. Pure: the table tests in org-policy.test.ts cover each bound.
 */
export function orgRefusal(state: OrgPolicyState, input: OrgCheckInput): string | null {
  if (state.kind === 'none') return null;
  if (state.kind === 'invalid') return `${invalidOrgPolicyLine(state)}.`;
  const { policy } = state;
  const full = `${input.repo.owner}/${input.repo.name}`;
  const repos = policy.repositories;
  if (repos && 'include' in repos && !repoListed(repos.include, input.repo)) {
    return `${quote(full)} is not in ${rule(state, 'repositories.include')}, so its tasks do not run.`;
  }
  if (repos && 'exclude' in repos && repoListed(repos.exclude, input.repo)) {
    return `${quote(full)} is in ${rule(state, 'repositories.exclude')}, so its tasks do not run.`;
  }
  if (input.scheduled && policy.allow?.schedules === false) return `scheduled runs are forbidden by ${rule(state, 'allow.schedules')}.`;
  const required = requiredRoleFor(state, input.tasks, input.manifestRole);
  if (required.rule && !roleAtLeast(input.role, required.role)) {
    return `@${input.actor} has the ${input.role} role on this repository; ${required.rule} asks for ${required.role} or higher.`;
  }
  const limits = policy.limits ?? {};
  for (const task of input.tasks) {
    const named = `the task ${quote(task.name)}`;
    const types = policy.allow?.types;
    if (types && !types.includes(task.type)) {
      return `${named} is of type ${quote(task.type)}, which ${rule(state, 'allow.types')} does not allow (allowed: ${types.map((t) => quote(t)).join(', ') || 'none'}).`;
    }
    if (task.network && policy.allow?.network === false) return `${named} asks for \`network: true\`, which ${rule(state, 'allow.network')} forbids.`;
    const res = task.resources ?? {};
    if (limits.cpus !== undefined && res.cpus !== undefined && res.cpus > limits.cpus) {
      return `${named} asks for ${res.cpus} CPUs; ${rule(state, 'limits.cpus')} allows at most ${limits.cpus}.`;
    }
    if (limits.memory !== undefined && res.memory !== undefined && res.memory > limits.memory) {
      return `${named} asks for ${formatSize(res.memory)} of memory; ${rule(state, 'limits.memory')} allows at most ${formatSize(limits.memory)}.`;
    }
    if (limits.pids !== undefined && res.pids !== undefined && res.pids > limits.pids) {
      return `${named} asks for ${res.pids} processes; ${rule(state, 'limits.pids')} allows at most ${limits.pids}.`;
    }
    if (limits.timeout !== undefined && task.timeoutMs !== undefined && task.timeoutMs > limits.timeout) {
      return `${named} asks for a ${formatTtl(task.timeoutMs)} timeout; ${rule(state, 'limits.timeout')} allows at most ${formatTtl(limits.timeout)}.`;
    }
  }
  if (limits.pin_ttl !== undefined && input.pinTtlMs !== undefined && input.pinTtlMs > limits.pin_ttl) {
    return `\`pin.ttl\` asks for ${formatTtl(input.pinTtlMs)}; ${rule(state, 'limits.pin_ttl')} allows at most ${formatTtl(limits.pin_ttl)}.`;
  }
  return null;
}

/** Why a schedule's interval is too short for the org policy, or null. */
export function scheduleIntervalRefusal(state: OrgPolicyState, task: string, intervalMs: number): string | null {
  if (state.kind !== 'policy') return null;
  const every = state.policy.limits?.schedule_every;
  if (every === undefined || intervalMs >= every) return null;
  return `the schedule of ${quote(task)} fires every ${formatTtl(intervalMs)}; ${rule(state, 'limits.schedule_every')} allows at most once every ${formatTtl(every)}.`;
}

/**
 * What a run of the owner gets from the org policy besides refusals: caps for what a task leaves
 * to the deployment's defaults, the output cap, the per-repository concurrency and the registries.
 */
export interface OrgCaps {
  cpus?: number;
  memoryBytes?: number;
  pids?: number;
  timeoutMs?: number;
  outputBytes?: number;
  pinTtlMs?: number;
  concurrency?: number;
  registries?: string[];
}

export function orgCaps(state: OrgPolicyState): OrgCaps {
  if (state.kind !== 'policy') return {};
  const { limits = {}, concurrency, registries } = state.policy;
  const caps: OrgCaps = {};
  if (limits.cpus !== undefined) caps.cpus = limits.cpus;
  if (limits.memory !== undefined) caps.memoryBytes = limits.memory;
  if (limits.pids !== undefined) caps.pids = limits.pids;
  if (limits.timeout !== undefined) caps.timeoutMs = limits.timeout;
  if (limits.output !== undefined) caps.outputBytes = limits.output;
  if (limits.pin_ttl !== undefined) caps.pinTtlMs = limits.pin_ttl;
  if (concurrency !== undefined) caps.concurrency = concurrency;
  if (registries !== undefined) caps.registries = registries.map((r) => r.trim().toLowerCase());
  return caps;
}

/**
 * `ALLOWED_REGISTRIES` ∩ the org's `registries`: what a build may pull from. Empty deployment list
 * means any public registry, so the org's list alone applies; no org list, the deployment's alone.
 * An empty intersection allows no registry at all (an image already on the engine still builds).
 */
export function combineRegistries(deployment: readonly string[], org: readonly string[] | undefined): { registries: string[]; none: boolean } {
  const ours = deployment.map((r) => r.trim().toLowerCase()).filter(Boolean);
  if (org === undefined) return { registries: ours, none: false };
  const theirs = org.map((r) => r.trim().toLowerCase()).filter(Boolean);
  const both = ours.length === 0 ? theirs : theirs.filter((r) => ours.includes(r));
  return { registries: both, none: both.length === 0 };
}

/** The effective limits, one line each, as `/help` and `task-mgmt validate --org` show them. */
export function describeOrgPolicy(state: OrgPolicyState): string[] {
  if (state.kind === 'none') return [`No org policy: ${state.why}; only this deployment's limits apply.`];
  if (state.kind === 'invalid') return [`${invalidOrgPolicyLine(state).replace(/^the/, 'The')}.`];
  const { policy } = state;
  const lines = [`Org policy ${state.where}:`];
  const allow = policy.allow ?? {};
  lines.push(`- task types: ${allow.types ? allow.types.map((t) => quote(t)).join(', ') || 'none' : 'any'}`);
  lines.push(`- network: ${allow.network === false ? 'forbidden' : 'as the deployment allows'}`);
  lines.push(`- schedules: ${allow.schedules === false ? 'forbidden' : policy.limits?.schedule_every !== undefined ? `at most once every ${formatTtl(policy.limits.schedule_every)}` : 'allowed'}`);
  const l = policy.limits ?? {};
  const bounds = [
    l.cpus !== undefined ? `${l.cpus} CPUs` : null,
    l.memory !== undefined ? `${formatSize(l.memory)} memory` : null,
    l.pids !== undefined ? `${l.pids} processes` : null,
    l.timeout !== undefined ? `${formatTtl(l.timeout)} timeout` : null,
    l.output !== undefined ? `${formatSize(l.output)} of outputs` : null,
    l.pin_ttl !== undefined ? `outputs pinned ${formatTtl(l.pin_ttl)}` : null,
  ].filter(Boolean);
  lines.push(`- at most: ${bounds.length > 0 ? bounds.join(', ') : 'the deployment’s limits'}`);
  const roles = policy.roles ?? {};
  const perType = Object.entries(roles.types ?? {}).map(([type, r]) => `${quote(type)} ${r}`);
  lines.push(`- least role to run: ${roles.run ?? 'write'}${perType.length > 0 ? `; per type: ${perType.join(', ')}` : ''}`);
  const repos = policy.repositories;
  if (repos) lines.push('include' in repos ? `- only these repositories: ${repos.include.join(', ')}` : `- every repository but: ${repos.exclude.join(', ')}`);
  if (policy.concurrency !== undefined) lines.push(`- runs at once per repository: ${policy.concurrency}`);
  if (policy.registries) lines.push(`- registries FROM may pull from: ${policy.registries.join(', ') || 'none'}`);
  return lines;
}
