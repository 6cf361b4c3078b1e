import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseManifest, procfileManifest, resolveParams, selectTasks, type TaskTypeCatalog } from './load-manifest.js';

const catalog: TaskTypeCatalog = new Map([
  ['ipfs/add-url', { name: 'ipfs/add-url', params: z.object({ url: z.url(), sha256: z.string().optional() }).strict() }],
  ['notify/email', { name: 'notify/email', params: z.object({ to: z.array(z.email()).min(1) }).strict() }],
]);

const pipeline = `version: 1
tasks:
  fetch:
    uses: ipfs/add-url
    with: { url: "https://download.example/wiki.zim" }
  process:
    needs: [fetch]
    dockerfile: Dockerfile
    params:
      lang: { default: en, pattern: "[a-z]{2}" }
      mode: { enum: [fast, full], required: true }
    timeout: 6h
    resources: { cpus: 2, memory: 4g }
  notify:
    needs: [fetch, process]
    uses: notify/email
    with: { to: ["maintainers@example.org"] }
pin: { ttl: 14d }
permission: maintain
review: [scripts/*.sh]
cancel_on_push: false
`;

describe('parseManifest', () => {
  it('reads the README example: order, types, limits, and what needs review', () => {
    const result = parseManifest(pipeline, catalog);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const { manifest } = result;
    expect(manifest.tasks.map((t) => [t.name, t.type])).toEqual([
      ['fetch', 'ipfs/add-url'],
      ['process', 'container'],
      ['notify', 'notify/email'],
    ]);
    const process = manifest.tasks[1]!;
    expect(process).toMatchObject({ dockerfile: 'Dockerfile', needs: ['fetch'], timeoutMs: 6 * 3_600_000, resources: { cpus: 2, memory: 4 * 1024 ** 3 }, network: false });
    expect(manifest).toMatchObject({ permission: 'maintain', pinTtlMs: 14 * 86_400_000, cancelOnPush: false });
    expect(manifest.reviewPaths).toEqual(['task-mgmt.yml', 'scripts/*.sh', 'Dockerfile']);
  });

  it('orders tasks after what they need whatever the file order', () => {
    const result = parseManifest('version: 1\ntasks:\n  c: { dockerfile: C, needs: [b] }\n  b: { dockerfile: B, needs: [a] }\n  a: { dockerfile: A }\n', catalog);
    expect(result.ok && result.manifest.tasks.map((t) => t.name)).toEqual(['a', 'b', 'c']);
  });

  it.each([
    ['version: 1\ntasks:\n  a:\n    dockerfile: D\n    timeout: forever\n', 5, 14, 'tasks.a.timeout', /not a duration/],
    ['version: 1\ntasks:\n  a:\n    dockerfile: D\n    colour: blue\n', 5, 5, 'tasks.a.colour', /Unrecognized key/],
    ['version: 2\ntasks:\n  a: { dockerfile: D }\n', 1, 10, 'version', /expected 1/i],
    ['version: 1\ntasks:\n  a:\n    uses: ipfs/nope\n', 4, 11, 'tasks.a.uses', /`ipfs\/nope` is not a task type; the types are `ipfs\/add-url`, `notify\/email`/],
    ['version: 1\ntasks:\n  a:\n    uses: ipfs/add-url\n    with: { url: "not a url" }\n', 5, 18, 'tasks.a.with.url', /URL/i],
    ['version: 1\ntasks:\n  a:\n    dockerfile: D\n    needs: [ghost]\n', 5, 12, 'tasks.a.needs', /needs `ghost`, which is not a task/],
    ['version: 1\ntasks:\n  a: { dockerfile: D, needs: [b] }\n  b: { dockerfile: D, needs: [a] }\n', 3, 30, 'tasks.a.needs', /cycle: a → b → a/],
    ['version: 1\ntasks:\n  a: { dockerfile: D, uses: ipfs/add-url }\n', 3, 6, 'tasks.a', /exactly one of `uses`, `dockerfile` or `procfile`/],
    ['version: 1\ntasks:\n  a:\n    procfile: Procfile\n', 4, 5, 'tasks.a.process', /required with `procfile`/],
    ['version: 1\ntasks:\n  a:\n    dockerfile: D\n    params: { lang: { default: english, pattern: "[a-z]{2}" } }\n', 5, 32, 'tasks.a.params.lang.default', /must match/],
    ['version: 1\ntasks: {}\n', 2, 8, 'tasks', /at least one task/],
    ['version: 1\ntasks:\n  a: { dockerfile: D }\n  a: { dockerfile: E }\n', 4, 3, '', /unique/i],
    ['version: 1\ntasks: [oops\n', 3, 1, '', /./],
  ])('%j fails at line %i column %i on %s', (text, line, column, field, message) => {
    const result = parseManifest(text, catalog);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const error = result.errors[0]!;
    expect(error).toMatchObject({ file: 'task-mgmt.yml', line, column, field });
    expect(error.message).toMatch(message);
  });
});

describe('selectTasks', () => {
  const result = parseManifest(pipeline, catalog);
  const manifest = result.ok ? result.manifest : (undefined as never);
  it('runs everything for `/run`, a task and what it needs for `/run x`', () => {
    expect(selectTasks(manifest, null)!.map((t) => t.name)).toEqual(['fetch', 'process', 'notify']);
    expect(selectTasks(manifest, 'process')!.map((t) => t.name)).toEqual(['fetch', 'process']);
    expect(selectTasks(manifest, 'fetch')!.map((t) => t.name)).toEqual(['fetch']);
    expect(selectTasks(manifest, 'nope')).toBeNull();
  });
});

describe('resolveParams', () => {
  const result = parseManifest(pipeline, catalog);
  const process = result.ok ? result.manifest.tasks[1]! : (undefined as never);
  it.each([
    [{ mode: 'fast' }, { ok: true, params: { mode: 'fast', lang: 'en' } }],
    [{ MODE: 'full', lang: 'de' }, { ok: true, params: { mode: 'full', lang: 'de' } }],
  ])('%j → %j', (given, expected) => {
    expect(resolveParams(process, given)).toEqual(expected);
  });
  it.each([
    [{}, /needs `mode=…` \(a required parameter\)/],
    [{ mode: 'slow' }, /parameter `mode` of `process` must be one of `fast`, `full`, not `slow`/],
    [{ mode: 'fast', lang: 'eng' }, /parameter `lang` of `process` must match `\[a-z\]\{2\}`/],
    [{ mode: 'fast', colour: 'red' }, /has no parameter `colour`; its parameters are `lang`, `mode`/],
  ])('%j is refused naming the parameter', (given, reason) => {
    const resolved = resolveParams(process, given);
    expect(resolved.ok).toBe(false);
    expect(!resolved.ok && resolved.reason).toMatch(reason);
  });
});

describe('procfileManifest', () => {
  it('makes one task per process type', () => {
    const result = procfileManifest('web: node server.js\n# comment\nworker: node worker.js --fast\n', 'busybox:latest');
    expect(result.ok && result.manifest.tasks.map((t) => [t.name, t.type, t.process, t.image])).toEqual([
      ['web', 'procfile', 'web', 'busybox:latest'],
      ['worker', 'procfile', 'worker', 'busybox:latest'],
    ]);
  });
  it('names the line of a malformed entry', () => {
    const result = procfileManifest('web: ok\nthis is not it\n', 'busybox:latest');
    expect(!result.ok && result.errors[0]).toMatchObject({ file: 'Procfile', line: 2 });
  });
});
