import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryRepoHost } from '../../adapters/local/memory-repo-host.js';
import { parseManifest, type TaskTypeCatalog } from './load-manifest.js';
import { readManifestYamlOffThread } from './manifest-yaml-pool.js';
import { readManifest } from './read-manifest.js';

const catalog: TaskTypeCatalog = new Map([['notify/email', { name: 'notify/email', params: z.object({ to: z.array(z.email()).min(1) }).strict() }]]);

/** Manifests just under the 256 KiB cap whose parsing blocked the event loop for about 0.8, 0.9 and 2.5 s */
const hostile = {
  'a map of 20,000 keys': Array.from({ length: 20_000 }, (_, i) => `key${String(i).padStart(5, '0')}: a`).join('\n'),
  'a list of 60,000 items': Array.from({ length: 60_000 }, () => '- a').join('\n'),
  '2,000 flow collections 63 deep': Array.from({ length: 2_000 }, () => `- ${'['.repeat(63)}${']'.repeat(63)}`).join('\n'),
};

const good = `version: 1
tasks:
  build:
    dockerfile: Dockerfile
  mail:
    needs: [build]
    uses: notify/email
    with: { to: [ops@example.org] }
`;

/** Bad manifests of every kind of error, with lines and columns from the YAML step and from the checks after it. */
const bad = [
  'version: 1\ntasks:\n  a: [unclosed\n',
  'version: 1\ntasks:\n  a: { dockerfile: D }\n  a: { dockerfile: E }\n',
  'version: 1\ntasks:\n  a:\n    dockerfile: D\n    colour: red\n',
  'version: 1\ntasks:\n  a:\n    uses: notify/email\n    with: { to: [not-an-address] }\n',
  'version: 1\ntasks:\n  a:\n    uses: notify/fax\n',
  'version: 1\ntasks:\n  a:\n    dockerfile: D\n    needs: [b]\n  b:\n    dockerfile: D\n    needs: [a]\n',
  'version: 1\ntasks:\n  a:\n    dockerfile: D\n    params:\n      n: { pattern: "(a", default: x }\n',
  'version: 2\ntasks: []\n',
  '- just\n- a list\n',
  `version: 1\nx: ${'['.repeat(65)}${']'.repeat(65)}\n`,
];

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function hostWith(manifest: string): { host: MemoryRepoHost; sha: string } {
  const host = new MemoryRepoHost();
  return { host, sha: host.commit({ 'task-mgmt.yml': manifest, Dockerfile: 'FROM busybox\n', D: 'FROM busybox\n', E: 'FROM busybox\n' }) };
}

describe('readManifest reads task-mgmt.yml off the event loop', () => {
  it.each(Object.entries(hostile))('answers %s without blocking the event loop for more than 500 ms (the old code: 0.8–2.5 s)', async (_, manifest) => {
    const { host, sha } = hostWith(manifest);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    await tick(50);
    const read = await readManifest(host, sha, catalog, 'busybox:latest');
    // The histogram records a blocked loop when its timer next runs, so the loop must turn once more.
    await tick(50);
    delay.disable();
    expect(read.ok).toBe(false);
    expect(delay.max / 1e6).toBeLessThan(500);
  });

  it('gives the same manifest for a good one, and the same errors with the same lines and columns for bad ones', async () => {
    const { host, sha } = hostWith(good);
    const read = await readManifest(host, sha, catalog, 'busybox:latest');
    const parsed = parseManifest(good, catalog, { defaultImage: 'busybox:latest' });
    expect(read.ok && parsed.ok && read.manifest).toEqual(parsed.ok && parsed.manifest);
    for (const manifest of bad) {
      const { host: badHost, sha: badSha } = hostWith(manifest);
      const answer = await readManifest(badHost, badSha, catalog, 'busybox:latest');
      expect(answer, manifest).toEqual(parseManifest(manifest, catalog, { defaultImage: 'busybox:latest' }));
    }
    const unknownKey = await readManifest(...(Object.values(hostWith(bad[2]!)) as [MemoryRepoHost, string]), catalog, 'busybox:latest');
    expect(unknownKey).toEqual({ ok: false, errors: [{ file: 'task-mgmt.yml', line: 5, column: 5, field: 'tasks.a.colour', message: expect.stringContaining('colour') }] });
  });

  it('refuses a huge `with:` list in the worker, naming the field, so neither it nor the task type\'s check reaches the event loop', async () => {
    let checked = 0;
    const counting: TaskTypeCatalog = new Map([['web/warc', { name: 'web/warc', params: z.object({ urls: z.array(z.string().refine(() => ++checked > 0)) }).strict() }]]);
    // 12,000 seeds, past the 10,000 values a manifest may hold (the type's check of 26,000 held the
    // event loop 150–330 ms); few enough for the worker to read them well within its deadline.
    const manifest = `version: 1\ntasks:\n  crawl:\n    uses: web/warc\n    with:\n      urls: [${Array(12_000).fill('h').join(',')}]\n`;
    expect(manifest.length).toBeLessThan(256 * 1024);
    const { host, sha } = hostWith(manifest);
    const read = await readManifest(host, sha, counting, 'busybox:latest');
    expect(read).toEqual({
      ok: false,
      errors: [{ file: 'task-mgmt.yml', line: 6, column: 13, field: 'tasks.crawl.with.urls', message: 'brings the manifest past 10000 values; a manifest may hold at most 10000' }],
    });
    expect(checked).toBe(0);
  });

  it('refuses a manifest that outlasts the deadline, and reads the next one with a fresh worker', async () => {
    const slow = await readManifestYamlOffThread(hostile['2,000 flow collections 63 deep'], 50);
    expect(slow).toEqual({
      ok: false,
      errors: [{ file: 'task-mgmt.yml', line: 1, column: 1, field: '', message: 'took too long to read (over 0.05 s); make it smaller or simpler' }],
    });
    const { host, sha } = hostWith(good);
    const next = await readManifest(host, sha, catalog, 'busybox:latest');
    expect(next.ok).toBe(true);
  });
});
