/**
 * LocalSourceFetcher against the SourceFetcher contract. A local folder has only its current
 * files, so the contract runs without history; what it leaves out of the copy is checked here.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalSourceFetcher } from '../../src/adapters/local/local-source-fetcher.js';
import { sourceFetcherContract } from './source-fetcher.contract.js';

const repo = { owner: 'local', name: 'folder', installationId: 0 };
const sha = '0'.repeat(40);

async function writeFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

sourceFetcherContract(
  'LocalSourceFetcher',
  async () => {
    const base = await mkdtemp(join(tmpdir(), 'task-mgmt-local-source-'));
    const root = join(base, 'repo');
    await mkdir(root);
    return {
      fetcher: new LocalSourceFetcher(root, join(base, 'data')),
      commit: async (files) => {
        // The folder holds only the newest files, as a working copy does.
        await rm(root, { recursive: true, force: true });
        await mkdir(root);
        await writeFiles(root, files);
        return { repo, sha };
      },
      cleanup: () => rm(base, { recursive: true, force: true }),
    };
  },
  { history: false },
);

describe('LocalSourceFetcher', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('leaves out .git, node_modules and the data folder inside the repository', async () => {
    const root = await mkdtemp(join(tmpdir(), 'task-mgmt-local-source-'));
    const dest = await mkdtemp(join(tmpdir(), 'task-mgmt-local-dest-'));
    dirs.push(root, dest);
    await writeFiles(root, {
      Dockerfile: 'FROM busybox\n',
      '.git/HEAD': 'ref: refs/heads/main\n',
      'sub/.git': 'gitdir: ../.git/modules/sub\n',
      'sub/kept.txt': 'kept\n',
      'node_modules/x/index.js': '',
      '.task-mgmt/runs.sqlite': '',
    });
    await new LocalSourceFetcher(root, join(root, '.task-mgmt')).fetch(repo, sha, dest, new AbortController().signal);
    expect((await readdir(dest, { recursive: true })).sort()).toStrictEqual(['Dockerfile', 'sub', 'sub/kept.txt']);
  });
});
