import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Fixed identity and dates so commits never depend on the machine's git config. */
const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Fake GitHub',
  GIT_AUTHOR_EMAIL: 'noreply@example.com',
  GIT_COMMITTER_NAME: 'Fake GitHub',
  GIT_COMMITTER_EMAIL: 'noreply@example.com',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

export interface TreeEntry {
  mode: string;
  type: 'blob' | 'tree';
  sha: string;
  size: number;
  path: string;
}

export interface DiffEntry {
  status: 'added' | 'removed' | 'modified' | 'renamed';
  filename: string;
  previousFilename?: string;
}

/**
 * A real git repository driven through the `git` CLI, so SHAs, trees and tarballs are
 * exactly what git (and therefore GitHub) would produce for the same content.
 */
export class GitRepo {
  /**
   * Answers about full SHAs never change (a commit's tree, a blob's bytes, the diff of two
   * commits), so they are kept: GitHub answers them from its caches in milliseconds, and a fake
   * that spawned git for each would make every caller look slow.
   */
  private readonly immutable = new Map<string, Promise<unknown>>();

  private constructor(readonly dir: string) {}

  private remember<T>(key: string, immutable: boolean, compute: () => Promise<T>): Promise<T> {
    if (!immutable) return compute();
    const known = this.immutable.get(key);
    if (known) return known as Promise<T>;
    const answer = compute();
    this.immutable.set(key, answer);
    answer.catch(() => this.immutable.delete(key));
    return answer;
  }

  static async init(dir: string, defaultBranch: string): Promise<GitRepo> {
    await mkdir(dir, { recursive: true });
    const repo = new GitRepo(dir);
    await repo.git(['init', '--quiet', `--initial-branch=${defaultBranch}`]);
    return repo;
  }

  async git(args: string[], maxBuffer = 64 * 1024 * 1024): Promise<string> {
    const { stdout } = await run('git', args, {
      cwd: this.dir,
      env: { ...process.env, ...GIT_ENV },
      maxBuffer,
    });
    return stdout;
  }

  async gitBuffer(args: string[]): Promise<Buffer> {
    const { stdout } = await run('git', args, {
      cwd: this.dir,
      env: { ...process.env, ...GIT_ENV },
      encoding: 'buffer',
      maxBuffer: 512 * 1024 * 1024,
    });
    return stdout;
  }

  /**
   * Commits `files` (null deletes) on top of `branch`, creating the branch from `from`
   * (or as an orphan for the very first commit). Returns the new commit's SHA.
   */
  async commit(branch: string, files: Record<string, string | null>, options: { from?: string; message?: string } = {}): Promise<string> {
    const exists = await this.resolve(branch);
    if (exists) {
      await this.git(['checkout', '--quiet', '--force', branch]);
    } else if (options.from) {
      await this.git(['checkout', '--quiet', '--force', '-b', branch, options.from]);
    } else {
      await this.git(['checkout', '--quiet', '--force', '--orphan', branch]);
    }
    for (const [path, content] of Object.entries(files)) {
      const target = join(this.dir, path);
      if (content === null) {
        await rm(target, { force: true });
        await this.git(['rm', '--quiet', '--cached', '--ignore-unmatch', '--', path]);
      } else {
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, content);
        await this.git(['add', '--', path]);
      }
    }
    await this.git(['commit', '--quiet', '--allow-empty', '-m', options.message ?? `Update ${Object.keys(files).join(', ') || 'nothing'}`]);
    return (await this.git(['rev-parse', 'HEAD'])).trim();
  }

  /** Resolves a branch name or (abbreviated) SHA to a commit SHA, or undefined. */
  async resolve(ref: string): Promise<string | undefined> {
    if (ref.startsWith('-') || ref.length === 0) return undefined;
    // A commit, once made, stays; a branch name or short SHA is asked of git each time.
    if (!/^[0-9a-f]{40}$/.test(ref)) return this.resolveNow(ref);
    const known = await this.remember(`resolve\0${ref}`, true, () => this.resolveNow(ref));
    // Only a commit that exists is remembered: one asked for before it was made may come later.
    if (known === undefined) this.immutable.delete(`resolve\0${ref}`);
    return known;
  }

  private async resolveNow(ref: string): Promise<string | undefined> {
    try {
      return (await this.git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`])).trim();
    } catch {
      return undefined;
    }
  }

  async isCommit(sha: string): Promise<boolean> {
    return /^[0-9a-f]{40}$/.test(sha) && (await this.resolve(sha)) === sha;
  }

  /** The object at `path` in `commit`: a blob, a tree, or undefined. */
  async objectAt(commit: string, path: string): Promise<{ type: 'blob' | 'tree'; sha: string } | undefined> {
    return this.remember(`object\0${commit}\0${path}`, /^[0-9a-f]{40}$/.test(commit), () => this.objectAtNow(commit, path));
  }

  private async objectAtNow(commit: string, path: string): Promise<{ type: 'blob' | 'tree'; sha: string } | undefined> {
    try {
      if (path === '') return { type: 'tree', sha: (await this.git(['rev-parse', '--verify', '--quiet', `${commit}^{tree}`])).trim() };
      // One git call: ls-tree names the entry itself (mode, type, object id) without listing into it.
      const line = (await this.git(['ls-tree', '-z', commit, '--', path])).split('\0')[0] ?? '';
      const [meta = '', name] = line.split('\t');
      const [, type, sha] = meta.split(' ');
      if (name !== path || (type !== 'blob' && type !== 'tree') || !sha) return undefined;
      return { type, sha };
    } catch {
      return undefined;
    }
  }

  async readBlob(sha: string): Promise<Buffer> {
    return this.remember(`blob\0${sha}`, /^[0-9a-f]{40}$/.test(sha), () => this.gitBuffer(['cat-file', 'blob', sha]));
  }

  /** Direct children of the tree at `path` in `commit`. */
  async listTree(commit: string, path: string): Promise<TreeEntry[]> {
    const treeish = path === '' ? commit : `${commit}:${path}`;
    const out = await this.git(['ls-tree', '-l', '-z', treeish]);
    return out
      .split('\0')
      .filter(Boolean)
      .map((line) => {
        const [meta = '', name = ''] = line.split('\t');
        const [mode = '', type = '', sha = '', size = '-'] = meta.split(/\s+/);
        return {
          mode,
          type: type === 'tree' ? 'tree' : 'blob',
          sha,
          size: size === '-' ? 0 : Number(size),
          path: path === '' ? name : `${path}/${name}`,
        };
      });
  }

  async mergeBase(a: string, b: string): Promise<string> {
    const full = /^[0-9a-f]{40}$/.test(a) && /^[0-9a-f]{40}$/.test(b);
    return this.remember(`merge-base\0${a}\0${b}`, full, async () => (await this.git(['merge-base', a, b])).trim());
  }

  /** Files changed between `base` and `head`, as GitHub's PR files list reports them. */
  async diff(base: string, head: string): Promise<DiffEntry[]> {
    const full = /^[0-9a-f]{40}$/.test(base) && /^[0-9a-f]{40}$/.test(head);
    return (await this.remember(`diff\0${base}\0${head}`, full, () => this.diffNow(base, head))).map((entry) => ({ ...entry }));
  }

  private async diffNow(base: string, head: string): Promise<DiffEntry[]> {
    const out = await this.git(['diff', '--name-status', '-z', '-M', base, head]);
    const parts = out.split('\0').filter((p) => p !== '');
    const entries: DiffEntry[] = [];
    for (let i = 0; i < parts.length; ) {
      const code = parts[i++] ?? '';
      if (code.startsWith('R')) {
        const from = parts[i++] ?? '';
        const to = parts[i++] ?? '';
        entries.push({ status: 'renamed', filename: to, previousFilename: from });
      } else {
        const filename = parts[i++] ?? '';
        const status = code === 'A' ? 'added' : code === 'D' ? 'removed' : 'modified';
        entries.push({ status, filename });
      }
    }
    return entries;
  }

  async numstat(base: string, head: string): Promise<Map<string, { additions: number; deletions: number }>> {
    const out = await this.git(['diff', '--numstat', '--no-renames', base, head]);
    const stats = new Map<string, { additions: number; deletions: number }>();
    for (const line of out.split('\n').filter(Boolean)) {
      const [add = '0', del = '0', file = ''] = line.split('\t');
      stats.set(file, { additions: Number(add) || 0, deletions: Number(del) || 0 });
    }
    return stats;
  }

  /** `git archive` output, the same bytes GitHub's codeload serves for a tarball. */
  async tarball(sha: string, prefix: string): Promise<Buffer> {
    return this.gitBuffer(['archive', '--format=tar.gz', `--prefix=${prefix}/`, sha]);
  }

  async commitInfo(sha: string): Promise<{ message: string; tree: string; parents: string[]; date: string }> {
    const out = await this.git(['show', '-s', '--format=%T%n%P%n%cI%n%B', sha]);
    const [tree = '', parents = '', date = '', ...message] = out.split('\n');
    return { tree, parents: parents.split(' ').filter(Boolean), date, message: message.join('\n').trim() };
  }
}
