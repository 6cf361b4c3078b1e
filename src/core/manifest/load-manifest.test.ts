import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseManifest, procfileManifest, resolveParams, selectTasks, type TaskTypeCatalog } from './load-manifest.js';

const catalog: TaskTypeCatalog = new Map([
  ['ipfs/add-url', { name: 'ipfs/add-url', params: z.object({ url: z.url(), sha256: z.string().optional() }).strict() }],
  ['notify/email', { name: 'notify/email', params: z.object({ to: z.array(z.email()).min(1) }).strict() }],
]);

/** A manifest of one `notify/email` task `mail` whose `with:` is `entries`, one a line (6 spaces in). */
const mailWith = (entries: string[]) => ['version: 1', 'tasks:', '  mail:', '    uses: notify/email', '    with:', ...entries.map((line) => `      ${line}`), ''].join('\n');
/** `count` list items, one a line (8 spaces in). */
const items = (count: number, item = 'a@example.org') => Array.from({ length: count }, () => `  - ${item}`);
/** A manifest of one container task `a` with `more` lines below `dockerfile: D` (4 spaces in). */
const taskA = (...more: string[]) => ['version: 1', 'tasks:', '  a:', '    dockerfile: D', ...more.map((line) => `    ${line}`), ''].join('\n');
/** `(a+)+$` backtracks exponentially in JavaScript's RegExp: 30 `a`s and a `!` take over a minute. */
const catastrophic = { pattern: '(a+)+$', value: `${'a'.repeat(30)}!` };
const laughs = [
  'version: 1',
  'x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]',
  ...Array.from({ length: 8 }, (_, i) => `x${i + 1}: &x${i + 1} [${Array(9).fill(`*x${i}`).join(', ')}]`),
  'tasks: { a: { dockerfile: D, with: *x8 } }',
  '',
].join('\n');

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

describe('parseManifest: untrusted manifests are bounded', () => {
  it.each([
    // Paths stay inside the repository.
    ['a procfile out of the repository', taskA().replace('dockerfile: D', 'procfile: ../../../../etc/passwd\n    process: web'), 4, 15, 'tasks.a.procfile', /inside the repository: `\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd` leaves it through `\.\.`/],
    ['an absolute dockerfile', taskA().replace('dockerfile: D', 'dockerfile: /etc/passwd'), 4, 17, 'tasks.a.dockerfile', /not the absolute path `\/etc\/passwd`/],
    ['a context that climbs out', taskA('context: sub/../..'), 5, 14, 'tasks.a.context', /leaves it through `\.\.`/],
    ['a context that climbs out with a backslash', taskA('context: ..\\up'), 5, 14, 'tasks.a.context', /leaves it through `\.\.`/],
    ['a review glob that climbs out', `${taskA()}review: [docs/*.md, ../secrets/*]\n`, 5, 21, 'review.1', /leaves it through `\.\.`/],
    // Patterns have RE2 semantics and bounded size; values checked against them are bounded.
    ['a backreference', taskA('params: { p: { pattern: "(a)\\\\1" } }'), 5, 29, 'tasks.a.params.p.pattern', /no backreferences or lookaround\): invalid escape sequence: `\\1`/],
    ['a lookahead', taskA('params: { p: { pattern: "(?=a)a" } }'), 5, 29, 'tasks.a.params.p.pattern', /no backreferences or lookaround\): invalid or unsupported Perl syntax: `\(\?=`/],
    ['a lookbehind', taskA('params: { p: { pattern: "(?<!a)b" } }'), 5, 29, 'tasks.a.params.p.pattern', /no backreferences or lookaround/],
    ['a pattern too large to compile', taskA('params: { p: { pattern: "[a-z]{999}[0-9]{999}" } }'), 5, 29, 'tasks.a.params.p.pattern', /is too large: it would compile to about 1998 steps, and a pattern may have at most 1000/],
    ['the catastrophic pattern with its default', taskA(`params: { p: { pattern: "${catastrophic.pattern}", default: "${catastrophic.value}" } }`), 5, 48, 'tasks.a.params.p.default', /must match `\(a\+\)\+\$`/],
    ['a default too long to check against a pattern', taskA(`params: { p: { pattern: "[a-z]+", default: ${'a'.repeat(1025)} } }`), 5, 48, 'tasks.a.params.p.default', /is 1025 characters long; a value checked against a pattern may have at most 1024/],
    // Counts are capped.
    ['65 tasks', `version: 1\ntasks:\n${Array.from({ length: 65 }, (_, i) => `  t${i}: { dockerfile: D }\n`).join('')}`, 3, 3, 'tasks', /declares 65 tasks; a manifest may declare at most 64/],
    ['33 parameters', taskA(`params: { ${Array.from({ length: 33 }, (_, i) => `p${i}: {}`).join(', ')} }`), 5, 13, 'tasks.a.params', /declares 33 parameters; a task may declare at most 32/],
    [
      '101 patterns',
      `version: 1\ntasks:\n${Array.from({ length: 4 }, (_, t) => `  t${t}:\n    dockerfile: D\n    params: { ${Array.from({ length: 30 }, (_, i) => `p${i}: { pattern: "[a-z]" }`).join(', ')} }\n`).join('')}`,
      14,
      291,
      'tasks.t3.params.p10.pattern',
      /is pattern number 101; a manifest may have at most 100/,
    ],
    [
      'patterns of 3,000 steps together',
      taskA(`params: { ${Array.from({ length: 3 }, (_, i) => `p${i}: { pattern: "[a-z]{999}" }`).join(', ')} }`),
      5,
      92,
      'tasks.a.params.p2.pattern',
      /brings the manifest's patterns to about 2997 steps; together they may have at most 2000/,
    ],
    // Every string and list is bounded, `with:` too, and so is what a manifest holds in all.
    ['a `with:` list of 60,000 items, within 256 KiB', mailWith([`to: [${Array(60_000).fill('a').join(',')}]`]), 6, 11, 'tasks.mail.with.to', /brings the manifest past 10000 values; a manifest may hold at most 10000/],
    ['a `with:` list of 1,001 items', mailWith(['to:', ...items(1_001)]), 7, 9, 'tasks.mail.with.to', /has 1001 items; a list in `with:` may have at most 1000/],
    ['a `with:` string of 8,193 characters', mailWith([`to: [a${'a'.repeat(8_192)}]`]), 6, 12, 'tasks.mail.with.to.0', /is 8193 characters long; a string in `with:` may have at most 8192/],
    ['a `with:` mapping of 65 keys', mailWith(['to: [a@example.org]', 'x:', ...Array.from({ length: 65 }, (_, i) => `  k${i}: 1`)]), 8, 9, 'tasks.mail.with.x', /has 65 keys; a mapping in `with:` may have at most 64/],
    [
      '12 tasks of 900 recipients each: values spread over lists under their caps',
      `version: 1\ntasks:\n${Array.from({ length: 12 }, (_, t) => `  m${t}:\n    uses: notify/email\n    with:\n      to:\n${items(900).map((line) => `      ${line}`).join('\n')}\n`).join('')}`,
      9_951,
      9,
      'tasks.m11.with.to',
      /brings the manifest past 10000 values/,
    ],
    [
      '3 tasks of 900 recipients each: more `with:` values together than the task types check',
      `version: 1\ntasks:\n${Array.from({ length: 3 }, (_, t) => `  m${t}:\n    uses: notify/email\n    with:\n      to:\n${items(900).map((line) => `      ${line}`).join('\n')}\n`).join('')}`,
      1_815,
      9,
      'tasks.m2.with.to',
      /brings the `with:` values of the manifest past 2000; its tasks' `with:` may hold at most 2000 values together/,
    ],
    ['a cyclic alias', mailWith(['to: &x [a@example.org, *x]']), 6, 30, 'tasks.mail.with.to.1', /is an alias of a collection that holds it/],
    ['65 needs', taskA(`needs: [${Array.from({ length: 65 }, () => 'a').join(', ')}]`), 5, 12, 'tasks.a.needs', /<=64 items/],
    ['101 enum values', taskA(`params: { p: { enum: [${Array.from({ length: 101 }, (_, i) => i).join(', ')}] } }`), 5, 26, 'tasks.a.params.p.enum', /<=100 items/],
    ['a description of 1,001 characters', taskA(`description: ${'d'.repeat(1_001)}`), 5, 18, 'tasks.a.description', /<=1000 characters/],
    ['101 review globs', `${taskA()}review: [${Array.from({ length: 101 }, (_, i) => `g${i}`).join(', ')}]\n`, 5, 9, 'review', /<=100 items/],
    ['a dockerfile path of 1,025 characters', taskA().replace('dockerfile: D', `dockerfile: ${'d'.repeat(1_025)}`), 4, 17, 'tasks.a.dockerfile', /<=1024 characters/],
    // The text is bounded before it is parsed: size, nesting, alias expansion.
    ['a manifest over 256 KiB', `${taskA()}# ${'x'.repeat(256 * 1024)}\n`, 1, 1, '', /is 257 KiB; a task definition may have at most 256 KiB/],
    ['100,000 nested flow sequences', `${taskA()}deep: ${'['.repeat(100_000)}\n`, 5, 71, '', /nests collections more than 64 levels deep/],
    ['100,000 nested block sequences', `${taskA()}deep:\n${'- '.repeat(100_000)}x\n`, 6, 1, '', /nests collections more than 64 levels deep/],
    ['a billion laughs', laughs, 3, 10, '', /its aliases expand too far \(Excessive alias count/],
  ] as const)('refuses %s', (_what, text, line, column, field, message) => {
    const result = parseManifest(text, catalog);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors[0]).toMatchObject({ file: 'task-mgmt.yml', line, column, field });
    expect(result.errors[0]!.message).toMatch(message);
  });
});

describe('parseManifest: the files `uses: container` and `uses: procfile` name in `with:`', () => {
  // The types' own schemas are the real ones' business; these accept anything, so the core's check shows.
  const anything = { safeParse: (data: unknown) => ({ success: true as const, data }) };
  const types = new Map([
    ['container', { name: 'container', params: anything }],
    ['procfile', { name: 'procfile', params: anything }],
  ]) as unknown as TaskTypeCatalog;
  const uses = (type: string, given: string) => `version: 1\ntasks:\n  a:\n    uses: ${type}\n    with: ${given}\n`;

  it.each([
    ['container', '{ dockerfile: build/Dockerfile.archive, context: build }', { type: 'container', dockerfile: 'build/Dockerfile.archive', context: 'build' }],
    ['container', '{}', { type: 'container', dockerfile: 'Dockerfile', context: '.' }],
    ['procfile', '{ procfile: ops/Procfile, process: web, image: "alpine:3" }', { type: 'procfile', procfile: 'ops/Procfile', process: 'web', image: 'alpine:3' }],
    ['procfile', '{ process: web }', { type: 'procfile', procfile: 'Procfile', process: 'web', image: 'busybox:latest' }],
  ])('`uses: %s` with %s is the task `dockerfile:` or `procfile:` would declare', (type, given, expected) => {
    const result = parseManifest(uses(type, given), types);
    expect(result.ok && result.manifest.tasks[0]).toMatchObject(expected);
    // …so the review gate counts that file, and the worker is handed it.
    expect(result.ok && result.manifest.reviewPaths).toContain('dockerfile' in expected ? expected.dockerfile : expected.procfile);
  });

  it.each([
    ['container', '{ dockerfile: ../../etc/passwd }', 'tasks.a.with.dockerfile', /leaves it through `\.\.`/],
    ['container', '{ context: /etc }', 'tasks.a.with.context', /not the absolute path `\/etc`/],
    ['procfile', '{ procfile: ../Procfile, process: web }', 'tasks.a.with.procfile', /leaves it through `\.\.`/],
  ])('`uses: %s` with %s may not name a file outside the repository', (type, given, field, message) => {
    const result = parseManifest(uses(type, given), types);
    expect(!result.ok && result.errors[0]).toMatchObject({ field, line: 5, message: expect.stringMatching(message) });
  });
});

describe('parseManifest: a task type checks only bounded `with:` values', () => {
  /** A type whose schema counts the values it is asked to check. */
  function countingCatalog(): { catalog: TaskTypeCatalog; checked: () => number } {
    let checked = 0;
    const counted = z.string().refine(() => ++checked > 0);
    const params = z.object({ urls: z.array(counted), to: z.array(counted), url: counted }).partial().strict();
    return { catalog: new Map([['notify/email', { name: 'notify/email', params }]]), checked: () => checked };
  }

  it.each([
    ['a list of 60,000 items', mailWith([`to: [${Array(60_000).fill('a').join(',')}]`])],
    ['a list of 1,001 items', mailWith(['to:', ...items(1_001)])],
    ['12 lists of 900 items', mailWith(Array.from({ length: 12 }, (_, i) => [`k${i}:`, ...items(900)]).flat())],
    ['3 lists of 900 items', mailWith(Array.from({ length: 3 }, (_, i) => [`k${i}:`, ...items(900)]).flat())],
    ['a string of 200,000 characters', mailWith([`url: ${'u'.repeat(200_000)}`])],
  ])('refuses %s before the type sees one value', (_what, text) => {
    const { catalog: counting, checked } = countingCatalog();
    expect(text.length).toBeLessThan(256 * 1024);
    const result = parseManifest(text, counting);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.errors[0]!.field).toMatch(/^tasks\.mail\.with\.(to|k11|k2|url)$/);
    expect(checked()).toBe(0);
  });

  it('passes the largest list the bounds allow, and the type checks each item once', () => {
    const { catalog: counting, checked } = countingCatalog();
    expect(parseManifest(mailWith(['to:', ...items(1_000)]), counting).ok).toBe(true);
    expect(checked()).toBe(1_000);
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

describe('patterns cannot stall the process', () => {
  /** Runs `work`, then lets the event loop turn, and returns the longest time the loop was blocked, in ms. */
  async function longestBlockMs(work: () => void): Promise<number> {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    await new Promise((resolve) => setTimeout(resolve, 30));
    work();
    await new Promise((resolve) => setTimeout(resolve, 30));
    delay.disable();
    return delay.max / 1e6;
  }
  const manifest = (param: string) => taskA(`params: { p: { ${param} } }`);

  it('keeps the anchored semantics of a pattern: the whole value matches', () => {
    const result = parseManifest(manifest('pattern: "[a-z]{2}|x"'), catalog);
    const task = result.ok ? result.manifest.tasks[0]! : (undefined as never);
    expect(resolveParams(task, { p: 'en' })).toEqual({ ok: true, params: { p: 'en' } });
    expect(resolveParams(task, { p: 'x' })).toEqual({ ok: true, params: { p: 'x' } });
    expect(resolveParams(task, { p: 'eng' }).ok).toBe(false);
    expect(resolveParams(task, { p: 'xen' }).ok).toBe(false);
    expect(parseManifest(manifest('pattern: "a)|(b"'), catalog).ok).toBe(false);
  });

  it('refuses `(a+)+$` against thirty `a`s and a `!`, as a default and as a `/run` value, without blocking the event loop for a second', async () => {
    let asDefault: ReturnType<typeof parseManifest> | undefined;
    let asValue: ReturnType<typeof resolveParams> | undefined;
    const blocked = await longestBlockMs(() => {
      asDefault = parseManifest(manifest(`pattern: "${catastrophic.pattern}", default: "${catastrophic.value}"`), catalog);
      const loaded = parseManifest(manifest(`pattern: "${catastrophic.pattern}"`), catalog);
      asValue = resolveParams(loaded.ok ? loaded.manifest.tasks[0]! : (undefined as never), { p: catastrophic.value });
    });
    expect(!asDefault!.ok && asDefault!.errors[0]).toMatchObject({ field: 'tasks.a.params.p.default', message: expect.stringContaining('must match') });
    expect(asValue).toMatchObject({ ok: false, reason: expect.stringMatching(/^parameter `p` of `a` must match/) });
    expect(blocked).toBeLessThan(1000);
  });

  it('answers within a second for the largest patterns and values the caps allow', async () => {
    // The most one manifest may ask for: 999 + 990 steps (a Unicode class counts ten), under 2,000.
    const patterns = ['p0: { pattern: "[a-z]{999}" }', 'p1: { pattern: "\\\\pL{99}" }'];
    const value = 'a'.repeat(1024);
    const blocked = await longestBlockMs(() => {
      const result = parseManifest(taskA(`params: { ${patterns.join(', ')} }`), catalog);
      expect(result.ok).toBe(true);
      const task = result.ok ? result.manifest.tasks[0]! : (undefined as never);
      for (const key of ['p0', 'p1']) expect(resolveParams(task, { [key]: value }).ok).toBe(false);
    });
    expect(blocked).toBeLessThan(1000);
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
  it('refuses a Procfile over 256 KiB before reading it', () => {
    const result = procfileManifest(`web: ${'x'.repeat(256 * 1024)}\n`, 'busybox:latest');
    expect(!result.ok && result.errors[0]).toMatchObject({ file: 'Procfile', line: 1, message: expect.stringContaining('at most 256 KiB') });
  });
  it('names the line of a malformed entry', () => {
    const result = procfileManifest('web: ok\nthis is not it\n', 'busybox:latest');
    expect(!result.ok && result.errors[0]).toMatchObject({ file: 'Procfile', line: 2 });
  });
});
