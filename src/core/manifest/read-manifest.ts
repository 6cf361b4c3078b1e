/** Loads the task definition of a commit through the code host, with what the review gate needs. */
import { createHash } from 'node:crypto';
import type { RepoHost } from '../../ports/repo-host.js';
import { dockerfileSources } from './task-files.js';
import { readManifestYamlOffThread } from './manifest-yaml-pool.js';
import {
  checkManifest,
  dockerfileManifest,
  manifestSources,
  procfileManifest,
  type LoadedManifest,
  type ManifestError,
  type ResolvedTask,
  type TaskTypeCatalog,
} from './load-manifest.js';

export type ReadManifest =
  | {
      ok: true;
      manifest: LoadedManifest;
      /** Paths and globs whose change is a change of the task (manifest, Dockerfiles, COPY sources, `review:`). */
      taskPaths: string[];
      /** sha256 over the definition files' contents. */
      digest: string;
    }
  | { ok: false; errors: ManifestError[] }
  | { ok: false; reason: string };

/**
 * Reads the task definition at `sha` in at most two rounds of requests: the three candidate files
 * at once (the first that exists wins, in the documented order), then the Dockerfiles and
 * Procfiles a `task-mgmt.yml` names, at once. Every `/run` waits on this before its check run
 * exists, so it asks nothing twice and nothing it can ask in parallel one after another.
 */
export async function readManifest(host: RepoHost, sha: string, catalog: TaskTypeCatalog, defaultImage: string): Promise<ReadManifest> {
  const at = `\`${sha.slice(0, 12)}\``;
  const candidates = manifestSources;
  const found = await Promise.all(candidates.map((path) => host.readFile(path, sha)));
  const index = found.findIndex((text) => text !== null);
  if (index === -1) return { ok: false, reason: `${at} declares no task: add a \`task-mgmt.yml\` or a \`Dockerfile\` at the root of the repository.` };
  const source = candidates[index]!;
  const texts = new Map<string, string>([[source, found[index]!]]);

  let manifest: LoadedManifest;
  if (source === 'Dockerfile') {
    manifest = dockerfileManifest();
  } else {
    const text = texts.get(source)!;
    // The YAML step of a task-mgmt.yml runs in a worker with a deadline: the text is the pull
    // request's, and parsing it on the event loop could hold up every other request.
    const yaml = source === 'Procfile' ? null : await readManifestYamlOffThread(text);
    if (yaml !== null && !yaml.ok) return yaml;
    const parsed = yaml === null ? procfileManifest(text, defaultImage) : checkManifest(yaml.raw, yaml.locate, catalog, { defaultImage });
    if (!parsed.ok) return parsed;
    manifest = parsed.manifest;
  }

  const named = new Set<string>();
  for (const task of manifest.tasks) {
    const file = dockerfileOf(task) ?? procfileOf(task);
    if (file !== undefined) named.add(file);
  }
  const missing = [...named].filter((path) => !texts.has(path));
  const read = await Promise.all(missing.map((path) => host.readFile(path, sha)));
  missing.forEach((path, i) => {
    if (read[i] !== null) texts.set(path, read[i]!);
  });

  // A task that reads the whole repository (a Procfile's commands, a Dockerfile copying its whole
  // context) makes every file a task file, unless the manifest's `review:` says which ones matter.
  const narrowed = manifest.review !== undefined && manifest.review.length > 0;
  const taskPaths = new Set(manifest.reviewPaths);
  for (const task of manifest.tasks) {
    const procfile = procfileOf(task);
    if (procfile !== undefined) {
      taskPaths.add(procfile);
      if (!narrowed) taskPaths.add('');
    }
    const dockerfile = dockerfileOf(task);
    if (dockerfile === undefined) continue;
    const text = texts.get(dockerfile);
    if (text === undefined) {
      return { ok: false, errors: [{ file: manifest.source, line: 1, column: 1, field: `tasks.${task.name}.dockerfile`, message: `\`${dockerfile}\` does not exist at ${at}` }] };
    }
    taskPaths.add(dockerfile);
    const context = task.context.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    for (const copied of dockerfileSources(text)) {
      if (copied === '' && narrowed) continue;
      taskPaths.add([context === '.' ? '' : context, copied].filter(Boolean).join('/'));
    }
  }
  const hash = createHash('sha256');
  for (const [path, text] of [...texts.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) hash.update(`${path}\0${text}\0`);
  if (source === 'Dockerfile') hash.update(`Dockerfile\0${texts.get('Dockerfile') ?? ''}\0`);
  return { ok: true, manifest, taskPaths: [...taskPaths], digest: `sha256:${hash.digest('hex')}` };
}

/** The Dockerfile a container task builds: `dockerfile:`, or the root one (`uses: container` without it). */
function dockerfileOf(task: ResolvedTask): string | undefined {
  return task.type === 'container' ? (task.dockerfile ?? 'Dockerfile') : undefined;
}

/** The Procfile whose command a procfile task runs. */
function procfileOf(task: ResolvedTask): string | undefined {
  return task.type === 'procfile' ? (task.procfile ?? 'Procfile') : undefined;
}
