/**
 * Which files define a task, so a pull request that changes them can be held for review
 * (README "Security model": the manifest, the Dockerfile or Procfile, and the files they
 * name). For a Dockerfile, the files it names are the sources of its COPY and ADD instructions:
 * `COPY . /app` names the whole repository.
 */
import { createHash } from 'node:crypto';

/** Paths (relative to the repository root, no leading `./`) that COPY/ADD take from the context. */
export function dockerfileSources(text: string): string[] {
  const sources: string[] = [];
  for (const instruction of logicalLines(text)) {
    const match = /^(copy|add)\s+(.*)$/i.exec(instruction);
    if (!match) continue;
    const words = splitArguments(match[2]!);
    // Flags come first; COPY --from=<stage> copies from another image, not from the repository.
    const flags = words.filter((word) => word.startsWith('--'));
    if (flags.some((flag) => /^--from=/i.test(flag))) continue;
    const paths = words.filter((word) => !word.startsWith('--'));
    for (const source of paths.slice(0, -1)) sources.push(normalize(source));
  }
  return sources;
}

/** The files of `changed` that define the task: the definition files themselves or anything they copy in. */
export function changedTaskFiles(changed: readonly string[], definitionFiles: readonly string[], namedSources: readonly string[]): string[] {
  const exact = new Set(definitionFiles.map(normalize));
  const patterns = namedSources.map(sourceMatcher);
  return changed.filter((file) => exact.has(normalize(file)) || patterns.some((matches) => matches(normalize(file))));
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

function sourceMatcher(source: string): (file: string) => boolean {
  if (source === '') return () => true;
  if (!/[*?[]/.test(source)) return (file) => file === source || file.startsWith(`${source}/`);
  const pattern = source
    .split('')
    .map((char) => (char === '*' ? '[^/]*' : char === '?' ? '[^/]' : /[.+^${}()|\\]/.test(char) ? `\\${char}` : char))
    .join('');
  const regex = new RegExp(`^${pattern}(/.*)?$`);
  return (file) => regex.test(file);
}

/** Joins continuation lines and drops comments, as Docker's parser does (default escape `\`). */
function logicalLines(text: string): string[] {
  const lines: string[] = [];
  let current = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim() !== '') lines.push(current.trim());
    current = '';
  }
  if (current.trim() !== '') lines.push(current.trim());
  return lines;
}

/** Shell form splits on spaces; JSON form is an array of strings. */
function splitArguments(rest: string): string[] {
  const trimmed = rest.trim();
  const flags: string[] = [];
  let remainder = trimmed;
  for (let match = /^(--\S+)\s+/.exec(remainder); match; match = /^(--\S+)\s+/.exec(remainder)) {
    flags.push(match[1]!);
    remainder = remainder.slice(match[0].length);
  }
  if (remainder.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(remainder);
      if (Array.isArray(parsed) && parsed.every((item) => typeof item === 'string')) return [...flags, ...parsed];
    } catch {
      // not JSON after all: fall back to the shell form
    }
  }
  return [...flags, ...remainder.split(/\s+/).filter(Boolean)];
}
