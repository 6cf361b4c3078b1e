import { describe, expect, it } from 'vitest';
import { MemoryRepoHost } from '../../adapters/local/memory-repo-host.js';
import type { TaskTypeCatalog } from './load-manifest.js';
import { readManifest } from './read-manifest.js';
import { changedTaskFiles, dockerfileSources, manifestDigest } from './task-files.js';

const taskChanges = (changed: readonly string[], taskPaths: readonly string[]) => changedTaskFiles(changed, taskPaths);

describe('dockerfileSources', () => {
  it.each([
    ['FROM busybox\nCMD true', []],
    ['FROM busybox\nCOPY run.sh /run.sh', ['run.sh']],
    ['FROM busybox\nCOPY . /app', ['']],
    ['FROM busybox\nADD . /app', ['']],
    ['FROM busybox\ncopy ./scripts/ lib/*.py /app/', ['scripts', 'lib/*.py']],
    ['FROM busybox\nADD --chown=1:1 --chmod=644 data.tar /d', ['data.tar']],
    ['FROM busybox\nADD https://example.org/x.tar /d', []],
    ['FROM busybox\nCOPY ["a b.txt", "c.txt", "/dst/"]', ['a b.txt', 'c.txt']],
    ['FROM busybox\nCOPY --chown=1:1 ["a b.txt", "/dst/"]', ['a b.txt']],
    ['FROM busybox AS build\nFROM busybox\nCOPY --from=build /x /y', []],
    ['FROM busybox\nCOPY --from=alpine:3 /etc/os-release /y', []],
    ['FROM busybox\nCOPY \\\n  one.sh \\\n  /dst/', ['one.sh']],
    ['FROM busybox\nCOPY \\\n# a comment inside\n  one.sh \\\n  /dst/', ['one.sh']],
    ['FROM busybox\n# COPY secret.txt /\nRUN true', []],
    // The escape directive makes the backtick the continuation character (Windows images).
    ['# escape=`\nFROM busybox\nCOPY `\n  secret.sh `\n  /dst/\n', ['secret.sh']],
    ['# escape=`\nFROM busybox\nCOPY a.sh `\n  b.sh C:\\dst\\\n', ['a.sh', 'b.sh']],
    // A heredoc is inline content, not a file of the repository; a file beside it still is.
    ['FROM busybox\nCOPY <<EOF /etc/motd\nhello\nEOF\nCOPY run.sh /r\n', ['run.sh']],
    ['FROM busybox\nCOPY <<EOF extra.sh /dst/\nhello\nEOF\n', ['extra.sh']],
    ['FROM busybox\nRUN <<EOF\ncat /etc/motd\nEOF\n', []],
    // Quotes are removed as the builder's word processing does; a variable could name any file.
    ['FROM busybox\nCOPY "secret.sh" /x', ['secret.sh']],
    ['FROM busybox\nARG SRC=secret.sh\nCOPY $SRC /x', ['']],
    // RUN --mount binds the build context (the default type is bind, the default source its root).
    ['FROM busybox\nRUN --mount=type=bind,source=tools,target=/t sh /t/build.sh', ['tools']],
    ['FROM busybox\nRUN --mount=target=/w sh /w/build.sh', ['']],
    ['FROM busybox\nRUN --mount=type=cache,target=/c true', []],
    ['FROM busybox AS b\nRUN true\nFROM busybox\nRUN --mount=type=bind,from=b,target=/b true', []],
  ])('%j names %j', (text, sources) => {
    expect(dockerfileSources(text)).toEqual(sources);
  });

  it('a Dockerfile too long to parse while a /run waits counts as copying its whole context', () => {
    const started = performance.now();
    expect(dockerfileSources(`FROM busybox\nCOPY ${'a '.repeat(20_000)}/b`)).toEqual(['']);
    expect(dockerfileSources(`FROM busybox\nCOPY ${'a '.repeat(16_000)}/b`)).toHaveLength(16_000);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe('changedTaskFiles', () => {
  it.each([
    [['README.md'], ['Dockerfile'], []],
    [['Dockerfile'], ['Dockerfile'], ['Dockerfile']],
    [['./Dockerfile', 'docs/x.md'], ['Dockerfile'], ['./Dockerfile']],
    [['scripts/run.sh', 'scripts2/x'], ['scripts'], ['scripts/run.sh']],
    [['lib/a.py', 'lib/sub/b.py', 'lib/c.txt'], ['lib/*.py'], ['lib/a.py']],
    [['anything/at/all.txt'], [''], ['anything/at/all.txt']],
    [['run.sh'], ['run.sh'], ['run.sh']],
    // review: globs as picomatch reads them: ** spans zero or more folders, braces expand, dot-files count.
    [['a.sh', 'x/y/c.sh', 'a.txt'], ['**/*.sh'], ['a.sh', 'x/y/c.sh']],
    [['.github/hook.sh'], ['**/*.sh'], ['.github/hook.sh']],
    [['a', 'b', 'c', 'a/inner.txt'], ['{a,b}'], ['a', 'b', 'a/inner.txt']],
    [['src/x.ts', 'lib/y.ts', 'docs/z.ts'], ['{src,lib}/**'], ['src/x.ts', 'lib/y.ts']],
    // A Dockerfile source is also taken literally, as the builder would for a file named so.
    [['{a,b}'], ['{a,b}'], ['{a,b}']],
  ])('%j with task paths %j → %j', (changed, paths, expected) => {
    expect(taskChanges(changed, paths)).toEqual(expected);
  });

  it('a pull request listing 3,000 files (GitHub lists no more) changes every task file', () => {
    const changed = Array.from({ length: 3000 }, (_, i) => `docs/page-${i}.md`);
    expect(taskChanges(changed.slice(0, 2999), ['Dockerfile', 'run.sh'])).toEqual([]);
    expect(taskChanges(changed, ['Dockerfile', 'run.sh'])).toEqual(['Dockerfile', 'run.sh']);
  });

  it('thousands of review: globs cannot stall the gate: past the budget every task path counts as changed', () => {
    const globs = Array.from({ length: 10_000 }, (_, i) => `**/x${i}/**/*.{sh,py}`);
    const changed = Array.from({ length: 2999 }, (_, i) => `${'d/'.repeat(i % 40)}file-${i}.txt`);
    const started = performance.now();
    expect(taskChanges(changed, globs)).toHaveLength(10_000);
    expect(taskChanges(changed.slice(0, 10), globs.slice(0, 100))).toEqual([]);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('readManifest: the task paths', () => {
  const catalog: TaskTypeCatalog = new Map([['container', { name: 'container', params: { safeParse: (data: unknown) => ({ success: true, data }) } }]]) as unknown as TaskTypeCatalog;
  const pathsAt = async (files: Record<string, string>) => {
    const host = new MemoryRepoHost();
    const read = await readManifest(host, host.commit(files), catalog, 'busybox:latest');
    if (!read.ok) throw new Error(JSON.stringify(read));
    return read.taskPaths;
  };
  const dockerfileCopyingAll = 'FROM busybox\nCOPY . /app\n';
  it.each([
    ['a root Procfile runs scripts from the whole repository', { Procfile: 'web: sh run.sh\n' }, ['Procfile', ''], ['run.sh', 'a/b.txt']],
    [
      'a Procfile task runs scripts from the whole repository',
      { 'task-mgmt.yml': 'version: 1\ntasks:\n  web:\n    procfile: Procfile\n    process: web\n', Procfile: 'web: sh run.sh\n' },
      ['task-mgmt.yml', 'Procfile', ''],
      ['run.sh'],
    ],
    [
      'review: replaces every file for a Procfile task',
      { 'task-mgmt.yml': 'version: 1\nreview: ["scripts/**"]\ntasks:\n  web:\n    procfile: Procfile\n    process: web\n', Procfile: 'web: sh scripts/run.sh\n' },
      ['task-mgmt.yml', 'scripts/**', 'Procfile'],
      ['scripts/run.sh', 'Procfile'],
    ],
    [
      'COPY . with a context copies every file of the context',
      { 'task-mgmt.yml': 'version: 1\ntasks:\n  build:\n    dockerfile: sub/Dockerfile\n    context: sub\n', 'sub/Dockerfile': dockerfileCopyingAll },
      ['task-mgmt.yml', 'sub/Dockerfile', 'sub'],
      ['sub/Dockerfile', 'sub/x.sh'],
    ],
    [
      'review: replaces the whole context, not the sources a COPY names',
      { 'task-mgmt.yml': 'version: 1\nreview: ["sub/*.sh"]\ntasks:\n  build:\n    dockerfile: sub/Dockerfile\n    context: sub\n', 'sub/Dockerfile': `${dockerfileCopyingAll}COPY tools /t\n` },
      ['task-mgmt.yml', 'sub/*.sh', 'sub/Dockerfile', 'sub/tools'],
      ['sub/Dockerfile', 'sub/x.sh', 'sub/tools/a'],
    ],
    [
      '`uses: container` builds the root Dockerfile, so it and what it copies are task files',
      { 'task-mgmt.yml': 'version: 1\ntasks:\n  build:\n    uses: container\n', Dockerfile: 'FROM busybox\nCOPY run.sh /r\n' },
      ['task-mgmt.yml', 'Dockerfile', 'run.sh'],
      ['Dockerfile', 'run.sh'],
    ],
    [
      '`uses: container` with `with: { dockerfile, context }` builds that Dockerfile: it and what it copies from that context are the task files, the root Dockerfile is not',
      {
        'task-mgmt.yml': 'version: 1\ntasks:\n  build:\n    uses: container\n    with: { dockerfile: build/Dockerfile.archive, context: build }\n',
        'build/Dockerfile.archive': 'FROM busybox\nCOPY run.sh /r\n',
        Dockerfile: 'FROM busybox\nCOPY root.sh /r\n',
      },
      ['task-mgmt.yml', 'build/Dockerfile.archive', 'build/run.sh'],
      ['build/Dockerfile.archive', 'build/run.sh'],
    ],
  ])('%s', async (_, files, expected, changes) => {
    const paths = await pathsAt(files);
    expect(paths).toEqual(expected);
    expect(taskChanges([...changes, 'unrelated/README.md'], paths)).toEqual(expected.includes('') ? [...changes, 'unrelated/README.md'] : changes);
  });
});

describe('manifestDigest', () => {
  it('depends on paths and contents, not on order', () => {
    const a = manifestDigest([{ path: 'Dockerfile', sha: '1' }, { path: 'task-mgmt.yml', sha: '2' }]);
    expect(a).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(manifestDigest([{ path: 'task-mgmt.yml', sha: '2' }, { path: 'Dockerfile', sha: '1' }])).toBe(a);
    expect(manifestDigest([{ path: 'Dockerfile', sha: '3' }, { path: 'task-mgmt.yml', sha: '2' }])).not.toBe(a);
  });
});
