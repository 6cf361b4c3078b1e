/**
 * Which files define a task, so a pull request that changes them can be held for review
 * (README "Security model": the manifest, the Dockerfile or Procfile, and the files they
 * name). For a Dockerfile, the files it names are what its build can read from the context:
 * the sources of COPY and ADD, and the context bound by `RUN --mount`; `COPY . /app` names the
 * whole context.
 */
import { createHash } from 'node:crypto';
import picomatch from 'picomatch';
import { parseDockerfile, type DockerfileFlag } from './parse-dockerfile.js';

/**
 * GitHub lists at most 3,000 files of a pull request, so a list that long may leave out a task
 * file: it counts as changing every one.
 * https://docs.github.com/en/rest/pulls/pulls#list-pull-requests-files
 */
export const listedFilesLimit = 3000;

/**
 * The most glob tests (changed files × task paths) the gate makes for one request, well under a
 * second (about 4 µs a test on a busy machine): a manifest listing thousands of `review:` globs
 * cannot stall the process while a `/run` waits. Past it, every task path counts as changed.
 */
export const matchBudget = 100_000;

/**
 * The longest Dockerfile the gate parses. The parser's time grows faster than the text (about
 * 0.2 s for 32 KiB on one line, 2 s for 256 KiB) and the gate runs while a `/run` waits, so a
 * longer one is not read at all: it counts as copying its whole context.
 */
export const dockerfileParseLimit = 32 * 1024;

/** ADD can fetch a URL or a Git repository: those are not files of the repository. */
const remoteSource = /^(?:[a-z][a-z0-9+.-]*:\/\/|git@)/i;

/**
 * Paths (relative to the build context, no leading `./`) that the build reads from the context;
 * `''` is the whole context. A source the gate cannot read literally (a variable) counts as the
 * whole context, since it could name any file.
 */
export function dockerfileSources(text: string): string[] {
  if (text.length > dockerfileParseLimit) return [''];
  const { escape, instructions } = parseDockerfile(text);
  const sources: string[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'COPY' || instruction.keyword === 'ADD') {
      // `--from=<stage or image>` copies from another image, not from the repository.
      if (instruction.flags.some((flag) => flag.name === 'from')) continue;
      // A heredoc (`COPY <<EOF /etc/motd`) is content written inline, not a path.
      const args = instruction.json ? instruction.args : instruction.args.filter((arg) => !/^<<-?/.test(arg));
      for (const source of args.slice(0, -1)) {
        if (remoteSource.test(source)) continue;
        sources.push(instruction.json ? normalize(source) : shellWord(source, escape));
      }
    } else if (instruction.keyword === 'RUN') {
      for (const flag of instruction.flags) {
        const bound = contextBind(flag);
        if (bound !== null) sources.push(shellWord(bound, escape));
      }
    }
  }
  return sources;
}

/**
 * The files of `changed` that define the task: those matching a task path. A task path is a
 * picomatch glob (`**` spans folders, `{a,b}` either) or a literal path, and names a file or
 * everything in a folder; `''` is every file. A list as long as GitHub's limit, or more tests
 * than the budget, changes every task path, and they are returned.
 */
export function changedTaskFiles(changed: readonly string[], taskPaths: readonly string[]): string[] {
  if (changed.length >= listedFilesLimit || changed.length * taskPaths.length > matchBudget) return [...taskPaths];
  const matchers = taskPaths.map(pathMatcher);
  return changed.filter((file) => {
    const path = normalize(file);
    return matchers.some((matches) => matches(path));
  });
}

/** A digest of the task's definition at a commit, from the git object ids of its files. */
export function manifestDigest(files: readonly { path: string; sha: string }[]): string {
  const lines = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map((file) => `${file.path} ${file.sha}\n`);
  return `sha256:${createHash('sha256').update(lines.join('')).digest('hex')}`;
}

function normalize(path: string): string {
  let result = path.replace(/\\/g, '/').replace(/^(\.\/)+/, '').replace(/^\/+/, '').replace(/\/+$/, '');
  if (result === '.' || result === '') result = '';
  return result;
}

function pathMatcher(taskPath: string): (path: string) => boolean {
  const literal = normalize(taskPath);
  if (literal === '') return () => true;
  // A task path naming a folder names what is inside it. dot: a pattern's `*` also matches
  // `.github` and `.env`, as the builder's does.
  const glob = picomatch([literal, `${literal}/**`], { dot: true });
  return (path) => path === literal || path.startsWith(`${literal}/`) || glob(path);
}

/**
 * A shell-form word as the builder's word processing sees it: quotes removed. A word still holding
 * a variable or an escape could name any file once expanded, so it stands for the whole context.
 */
function shellWord(word: string, escape: string): string {
  const unquoted = word.replace(/["']/g, '');
  if (unquoted.includes('$') || unquoted.includes(escape)) return '';
  return normalize(unquoted);
}

/**
 * `RUN --mount=type=bind,source=x` makes `x` of the context readable during the build; bind is the
 * default type and the context's root the default source. With `from=` it binds another image.
 * https://docs.docker.com/reference/dockerfile/#run---mounttypebind
 */
function contextBind(flag: DockerfileFlag): string | null {
  if (flag.name !== 'mount') return null;
  const type = flag.options.get('type') ?? 'bind';
  if (type !== 'bind' || flag.options.has('from')) return null;
  return flag.options.get('source') ?? flag.options.get('src') ?? '.';
}
