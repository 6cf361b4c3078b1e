/**
 * LocalRepoHost against the RepoHost contract: a folder stands in for the repository at its one
 * commit. It has no roles (the person at the keyboard is the admin) and no pull requests, which
 * the contract checks it says plainly.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { LocalRepoHost } from '../../src/adapters/local/local-repo-host.js';
import { baseTree, repoHostContract } from './repo-host.contract.js';

repoHostContract(
  'LocalRepoHost',
  async () => {
    const root = await mkdtemp(join(tmpdir(), 'task-mgmt-local-host-'));
    for (const [path, content] of Object.entries(baseTree)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), content);
    }
    const host = new LocalRepoHost(root);
    return {
      host,
      head: await host.getDefaultBranchHead(),
      visibility: 'public',
      setRole: null,
      pullRequests: null,
      cleanup: () => rm(root, { recursive: true, force: true }),
    };
  },
  { roles: false, pullRequests: false },
);
