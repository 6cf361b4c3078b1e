import { describe, expect, it } from 'vitest';
import type { ResolvedTask } from '../manifest/load-manifest.js';
import { combineRegistries, describeOrgPolicy, orgCaps, orgRefusal, parseOrgPolicy, requiredRoleFor, scheduleIntervalRefusal, type OrgCheckInput, type OrgPolicyState } from './org-policy.js';

const where = '`acme/.github` `.github/task-mgmt.yml`';
const GiB = 1024 ** 3;

function policy(text: string): OrgPolicyState {
  const parsed = parseOrgPolicy(text);
  if (!parsed.ok) throw new Error(`${parsed.line}: ${parsed.message}`);
  return { kind: 'policy', where, policy: parsed.policy, digest: 'd' };
}

function task(overrides: Partial<ResolvedTask> = {}): ResolvedTask {
  return { name: 'build', type: 'container', with: {}, context: '.', needs: [], params: {}, network: false, ...overrides };
}

function input(overrides: Partial<OrgCheckInput> = {}): OrgCheckInput {
  return { repo: { owner: 'acme', name: 'site' }, tasks: [task()], role: 'write', actor: 'alice', manifestRole: 'write', ...overrides };
}

const full = policy(`
version: 1
allow:
  types: [container, procfile, ipfs/add-url]
  network: false
  schedules: true
limits: { cpus: 2, memory: 4g, pids: 512, timeout: 12h, output: 50g, pin_ttl: 90d, schedule_every: 1h }
roles: { run: write, types: { ipfs/add-url: maintain } }
repositories: { exclude: [acme/legacy] }
concurrency: 2
registries: [docker.io, ghcr.io]
`);

describe('the org policy bounds a request (the manifest can only tighten them)', () => {
  const cases: { name: string; state: OrgPolicyState; input: OrgCheckInput; refused: RegExp | null }[] = [
    { name: 'no policy: anything the deployment allows', state: { kind: 'none', why: 'no .github' }, input: input({ tasks: [task({ resources: { memory: 64 * GiB } })] }), refused: null },
    { name: 'within every bound', state: full, input: input({ tasks: [task({ resources: { cpus: 2, memory: 4 * GiB, pids: 512 }, timeoutMs: 12 * 3_600_000 })], pinTtlMs: 90 * 86_400_000 }), refused: null },
    { name: 'a type not allowed', state: full, input: input({ tasks: [task({ type: 'notify/email' })] }), refused: /type `notify\/email`, which `allow.types` of the org policy `acme\/.github` `.github\/task-mgmt.yml` does not allow/ },
    { name: 'memory over the cap', state: full, input: input({ tasks: [task({ resources: { memory: 8 * GiB } })] }), refused: /8\.0 GiB of memory; `limits.memory` of the org policy .* allows at most 4\.0 GiB/ },
    { name: 'more CPUs', state: full, input: input({ tasks: [task({ resources: { cpus: 4 } })] }), refused: /`limits.cpus`/ },
    { name: 'more processes', state: full, input: input({ tasks: [task({ resources: { pids: 4096 } })] }), refused: /`limits.pids`/ },
    { name: 'a longer timeout', state: full, input: input({ tasks: [task({ timeoutMs: 13 * 3_600_000 })] }), refused: /`limits.timeout`/ },
    { name: 'a longer pin', state: full, input: input({ pinTtlMs: 91 * 86_400_000 }), refused: /`limits.pin_ttl`/ },
    { name: 'network when forbidden', state: full, input: input({ tasks: [task({ network: true })] }), refused: /`allow.network`/ },
    { name: 'an excluded repository', state: full, input: input({ repo: { owner: 'acme', name: 'legacy' } }), refused: /`acme\/legacy` is in `repositories.exclude`/ },
    { name: 'the role a type needs', state: full, input: input({ tasks: [task({ type: 'ipfs/add-url' })] }), refused: /@alice has the write role.*`roles.types.ipfs\/add-url` .* asks for maintain/ },
    { name: 'the role a type needs, held', state: full, input: input({ tasks: [task({ type: 'ipfs/add-url' })], role: 'maintain' }), refused: null },
    { name: 'a repository not included', state: policy('version: 1\nrepositories: { include: [site] }\n'), input: input({ repo: { owner: 'acme', name: 'other' } }), refused: /`repositories.include`/ },
    { name: 'an included repository', state: policy('version: 1\nrepositories: { include: [site] }\n'), input: input(), refused: null },
    { name: 'schedules forbidden', state: policy('version: 1\nallow: { schedules: false }\n'), input: input({ scheduled: true }), refused: /`allow.schedules`/ },
    { name: 'schedules forbidden, a comment still runs', state: policy('version: 1\nallow: { schedules: false }\n'), input: input(), refused: null },
    {
      name: 'an invalid policy refuses everything',
      state: { kind: 'invalid', where, line: 3, field: 'limits.memory', message: 'bad size', digest: 'x' },
      input: input(),
      refused: /org policy `acme\/.github` `.github\/task-mgmt.yml` is invalid \(line 3, `limits.memory`/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const refusal = orgRefusal(c.state, c.input);
      if (c.refused === null) expect(refusal).toBeNull();
      else expect(refusal).toMatch(c.refused);
    });
  }
});

describe('the strictest role wins', () => {
  const cases: { roles: string; manifest: 'write' | 'maintain' | 'admin'; type: string; want: string }[] = [
    { roles: '{}', manifest: 'write', type: 'container', want: 'write' },
    { roles: '{ run: maintain }', manifest: 'write', type: 'container', want: 'maintain' },
    { roles: '{ run: maintain }', manifest: 'admin', type: 'container', want: 'admin' },
    { roles: '{ types: { container: admin } }', manifest: 'maintain', type: 'container', want: 'admin' },
    { roles: '{ types: { container: admin } }', manifest: 'write', type: 'procfile', want: 'write' },
  ];
  for (const c of cases) {
    it(`roles ${c.roles}, manifest ${c.manifest}, type ${c.type} → ${c.want}`, () => {
      expect(requiredRoleFor(policy(`version: 1\nroles: ${c.roles}\n`), [task({ type: c.type })], c.manifest).role).toBe(c.want);
    });
  }
});

describe('registries combine by intersection', () => {
  const cases: { deployment: string[]; org: string[] | undefined; want: string[]; none: boolean }[] = [
    { deployment: [], org: undefined, want: [], none: false },
    { deployment: ['docker.io', 'quay.io'], org: undefined, want: ['docker.io', 'quay.io'], none: false },
    { deployment: [], org: ['ghcr.io'], want: ['ghcr.io'], none: false },
    { deployment: ['docker.io', 'quay.io'], org: ['Docker.io', 'ghcr.io'], want: ['docker.io'], none: false },
    { deployment: ['quay.io'], org: ['ghcr.io'], want: [], none: true },
  ];
  for (const c of cases) {
    it(`${c.deployment.join(',') || 'any'} ∩ ${c.org?.join(',') ?? 'unset'}`, () => {
      expect(combineRegistries(c.deployment, c.org)).toEqual({ registries: c.want, none: c.none });
    });
  }
});

describe('parsing the org file', () => {
  it('names the line and field of a schema error', () => {
    expect(parseOrgPolicy('version: 1\nlimits:\n  memory: lots\n')).toMatchObject({ ok: false, line: 3, field: 'limits.memory', message: expect.stringContaining('is not a size') });
  });
  it('refuses unknown keys and YAML errors with their line', () => {
    expect(parseOrgPolicy('version: 1\nalow: {}\n')).toMatchObject({ ok: false, line: 1 });
    expect(parseOrgPolicy('version: 1\nlimits: [\n')).toMatchObject({ ok: false });
  });
  it('gives caps for what a task leaves to the deployment, and describes the limits', () => {
    expect(orgCaps(full)).toEqual({ cpus: 2, memoryBytes: 4 * GiB, pids: 512, timeoutMs: 12 * 3_600_000, outputBytes: 50 * GiB, pinTtlMs: 90 * 86_400_000, concurrency: 2, registries: ['docker.io', 'ghcr.io'] });
    const text = describeOrgPolicy(full).join('\n');
    expect(text).toContain('4.0 GiB memory');
    expect(text).toContain('every repository but: acme/legacy');
    expect(describeOrgPolicy({ kind: 'none', why: 'there is no repository acme/.github' })[0]).toMatch(/^No org policy: there is no repository acme\/.github/);
  });
  it('bounds how often a schedule fires', () => {
    expect(scheduleIntervalRefusal(full, 'nightly', 30 * 60_000)).toMatch(/`limits.schedule_every`/);
    expect(scheduleIntervalRefusal(full, 'nightly', 3_600_000)).toBeNull();
  });
});
