import { describe, expect, it } from 'vitest';
import { changedTaskFiles, dockerfileSources, manifestDigest } from './task-files.js';

describe('dockerfileSources', () => {
  it.each([
    ['FROM busybox\nCMD true', []],
    ['FROM busybox\nCOPY run.sh /run.sh', ['run.sh']],
    ['FROM busybox\nCOPY . /app', ['']],
    ['FROM busybox\ncopy ./scripts/ lib/*.py /app/', ['scripts', 'lib/*.py']],
    ['FROM busybox\nADD --chown=1:1 data.tar /d', ['data.tar']],
    ['FROM busybox\nCOPY ["a b.txt", "c.txt", "/dst/"]', ['a b.txt', 'c.txt']],
    ['FROM busybox AS build\nFROM busybox\nCOPY --from=build /x /y', []],
    ['FROM busybox\nCOPY \\\n  one.sh \\\n  /dst/', ['one.sh']],
    ['FROM busybox\n# COPY secret.txt /\nRUN true', []],
  ])('%j names %j', (text, sources) => {
    expect(dockerfileSources(text)).toEqual(sources);
  });
});

describe('changedTaskFiles', () => {
  const definition = ['Dockerfile'];
  it.each([
    [['README.md'], [], []],
    [['Dockerfile'], [], ['Dockerfile']],
    [['./Dockerfile', 'docs/x.md'], [], ['./Dockerfile']],
    [['scripts/run.sh', 'scripts2/x'], ['scripts'], ['scripts/run.sh']],
    [['lib/a.py', 'lib/sub/b.py', 'lib/c.txt'], ['lib/*.py'], ['lib/a.py']],
    [['anything/at/all.txt'], [''], ['anything/at/all.txt']],
    [['run.sh'], ['run.sh'], ['run.sh']],
  ])('%j with sources %j → %j', (changed, sources, expected) => {
    expect(changedTaskFiles(changed, definition, sources)).toEqual(expected);
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
