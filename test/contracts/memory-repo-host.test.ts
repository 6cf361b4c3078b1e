/**
 * MemoryRepoHost against the RepoHost contract. The pull requests here are what the fixture says
 * they are: the changed paths are the ones each change and rename names, as GitHub would list them.
 */
import { MemoryRepoHost } from '../../src/adapters/local/memory-repo-host.js';
import { baseTree, repoHostContract } from './repo-host.contract.js';

type Tree = Record<string, string>;

function applyChanges(tree: Tree, changes: Record<string, string | null>, renames: [string, string][] = []): Tree {
  const next = { ...tree };
  for (const [from, to] of renames) {
    next[to] = next[from]!;
    delete next[from];
  }
  for (const [path, content] of Object.entries(changes)) {
    if (content === null) delete next[path];
    else next[path] = content;
  }
  return next;
}

repoHostContract(
  'MemoryRepoHost',
  async () => {
    const host = new MemoryRepoHost().setVisibility('public');
    const base = host.commit(baseTree);
    host.setDefaultHead(base);
    const heads = new Map<number, { tree: Tree; changedFiles: string[] }>();
    let nextNumber = 1;
    return {
      host,
      head: { branch: host.defaultBranch, sha: base },
      visibility: 'public',
      setRole: async (login, role) => {
        if (role !== null) host.setRole(login, role);
      },
      pullRequests: {
        open: async ({ author, changes, renames = [] }) => {
          const number = nextNumber++;
          const tree = applyChanges(baseTree, changes, renames);
          const headSha = host.commit(tree);
          const pull = host.openPullRequest({ number, author, headSha, changedFiles: [...Object.keys(changes), ...renames.flat()] });
          heads.set(number, { tree, changedFiles: pull.changedFiles });
          return { number, headSha };
        },
        push: async (number, changes) => {
          const pull = heads.get(number)!;
          pull.tree = applyChanges(pull.tree, changes);
          const sha = host.commit(pull.tree);
          host.push(number, sha);
          for (const path of Object.keys(changes)) if (!pull.changedFiles.includes(path)) pull.changedFiles.push(path);
          return sha;
        },
        review: async (number, reviewer, state, commitId) => host.review(number, reviewer, state, commitId).id,
      },
      cleanup: async () => undefined,
    };
  },
  { roles: true, pullRequests: true },
);
