/** Loads the task definition of a commit through the code host, with what the review gate needs. */
import { createHash } from 'node:crypto';
import type { RepoHost } from '../../ports/repo-host.js';
import { dockerfileSources } from './task-files.js';
import {
  dockerfileManifest,
  manifestSource,
  parseManifest,
  procfileManifest,
  type LoadedManifest,
  type ManifestError,
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

export async function readManifest(host: RepoHost, sha: string, catalog: TaskTypeCatalog, defaultImage: string): Promise<ReadManifest> {
  const root = await host.listRoot(sha);
  const source = manifestSource(root.filter((entry) => entry.type === 'file').map((entry) => entry.name));
  const at = `\`${sha.slice(0, 12)}\``;
  if (source === null) return { ok: false, reason: `${at} declares no task: add a \`task-mgmt.yml\` or a \`Dockerfile\` at the root of the repository.` };

  const texts = new Map<string, string>();
  const read = async (path: string): Promise<string | null> => {
    if (!texts.has(path)) {
      const text = await host.readFile(path, sha);
      if (text === null) return null;
      texts.set(path, text);
    }
    return texts.get(path)!;
  };

  let manifest: LoadedManifest;
  if (source === 'Dockerfile') {
    manifest = dockerfileManifest();
  } else {
    const text = (await read(source)) ?? '';
    const parsed = source === 'Procfile' ? procfileManifest(text, defaultImage) : parseManifest(text, catalog, { defaultImage });
    if (!parsed.ok) return parsed;
    manifest = parsed.manifest;
  }

  const taskPaths = new Set(manifest.reviewPaths);
  for (const task of manifest.tasks) {
    if (task.type !== 'container' || !task.dockerfile) continue;
    const text = await read(task.dockerfile);
    if (text === null) {
      return { ok: false, errors: [{ file: manifest.source, line: 1, column: 1, field: `tasks.${task.name}.dockerfile`, message: `\`${task.dockerfile}\` does not exist at ${at}` }] };
    }
    const context = task.context === '.' ? '' : `${task.context.replace(/\/+$/, '')}/`;
    for (const copied of dockerfileSources(text)) taskPaths.add(`${context}${copied}`.replace(/\/$/, '') || '');
  }
  for (const task of manifest.tasks) if (task.procfile) await read(task.procfile);
  const hash = createHash('sha256');
  for (const [path, text] of [...texts.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) hash.update(`${path}\0${text}\0`);
  if (source === 'Dockerfile') hash.update(`Dockerfile\0${(await read('Dockerfile')) ?? ''}\0`);
  return { ok: true, manifest, taskPaths: [...taskPaths], digest: `sha256:${hash.digest('hex')}` };
}
