/**
 * What every SourceFetcher adapter must do (src/ports/source-fetcher.ts): put the files of the
 * tree at a commit into the folder given, byte for byte, with nothing else beside them.
 *
 * Each adapter brings a way to record a commit with given files. A local folder holds only its
 * current files, so its adapter declares `history: false` and the test that an older commit gives
 * the older tree is not registered for it; the suite's name says so.
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RepoRef } from '../../src/core/runs/run.js';
import type { SourceFetcher } from '../../src/ports/source-fetcher.js';

export interface Commit {
  repo: RepoRef;
  sha: string;
}

export interface OpenedSourceFetcher {
  fetcher: SourceFetcher;
  /** Records a commit whose tree holds exactly `files` (path → content) and says where it is. */
  commit(files: Record<string, string>): Promise<Commit>;
  cleanup(): Promise<void>;
}

/** Every file below `dir`, as relative path → content. */
async function filesIn(dir: string): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    found[relative(dir, path)] = await readFile(path, 'utf8');
  }
  return found;
}

const sourceTree: Record<string, string> = {
  Dockerfile: 'FROM busybox\nCOPY . /src\nCMD ["sh", "/src/bin/run.sh"]\n',
  'task-mgmt.yml': 'tasks:\n  snapshot:\n    dockerfile: Dockerfile\n',
  'bin/run.sh': '#!/bin/sh\necho "hello from $TASK_RUN_ID"\n',
  'docs/deep/er/notes.md': '# Notes\r\nWindows line ends stay as they are.\r\n',
  'empty.txt': '',
  'ünïcödé name ✓.txt': 'Grüße, 世界\n',
  '.hidden/config': 'dot folders are part of the tree\n',
};

export function sourceFetcherContract(name: string, open: () => Promise<OpenedSourceFetcher>, options: { history: boolean }): void {
  describe(`SourceFetcher contract: ${name}${options.history ? '' : ' (current files only: no older commits)'}`, () => {
    let opened: OpenedSourceFetcher;
    let fetcher: SourceFetcher;
    const dirs: string[] = [];

    beforeEach(async () => {
      opened = await open();
      ({ fetcher } = opened);
    });

    afterEach(async () => {
      await opened.cleanup();
      await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
    });

    /** An empty destination folder, as the worker creates it. */
    async function destination(): Promise<string> {
      const dir = await mkdtemp(join(tmpdir(), 'task-mgmt-source-'));
      dirs.push(dir);
      return dir;
    }

    it('puts exactly the files of the tree into the folder, with their content', async () => {
      const { repo, sha } = await opened.commit(sourceTree);
      const dest = await destination();
      await fetcher.fetch(repo, sha, dest, new AbortController().signal);
      expect(await filesIn(dest)).toStrictEqual(sourceTree);
    });

    it('fetches into a folder whose path has spaces and non-ASCII letters', async () => {
      const { repo, sha } = await opened.commit({ 'a.txt': 'a\n' });
      const dest = join(await destination(), 'a folder ✓');
      await mkdir(dest);
      await fetcher.fetch(repo, sha, dest, new AbortController().signal);
      expect(await filesIn(dest)).toStrictEqual({ 'a.txt': 'a\n' });
    });

    it('stops at once, writing nothing, when the signal is already aborted', async () => {
      const { repo, sha } = await opened.commit(sourceTree);
      const dest = await destination();
      const controller = new AbortController();
      controller.abort(new Error('run cancelled'));
      const started = Date.now();
      await expect(fetcher.fetch(repo, sha, dest, controller.signal)).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(2000);
      expect(await readdir(dest)).toStrictEqual([]);
    });

    if (!options.history) return;

    it('gives the tree of the commit asked for, not a newer one', async () => {
      const older = await opened.commit({ 'version.txt': 'one\n', 'removed-later.txt': 'gone in two\n' });
      const newer = await opened.commit({ 'version.txt': 'two\n', 'added-later.txt': 'new in two\n' });
      expect(newer.sha).not.toBe(older.sha);

      const olderDest = await destination();
      await fetcher.fetch(older.repo, older.sha, olderDest, new AbortController().signal);
      expect(await filesIn(olderDest)).toStrictEqual({ 'version.txt': 'one\n', 'removed-later.txt': 'gone in two\n' });

      const newerDest = await destination();
      await fetcher.fetch(newer.repo, newer.sha, newerDest, new AbortController().signal);
      expect(await filesIn(newerDest)).toStrictEqual({ 'version.txt': 'two\n', 'added-later.txt': 'new in two\n' });
    });

    it('fails for a commit the repository does not have', async () => {
      const { repo } = await opened.commit({ 'a.txt': 'a\n' });
      await expect(fetcher.fetch(repo, 'f'.repeat(40), await destination(), new AbortController().signal)).rejects.toThrow();
    });
  });
}
