/**
 * Runs the YAML → JS step of a manifest (readManifestYaml) in a worker thread, so that a hostile
 * `task-mgmt.yml` costs a worker's time and not the event loop's (`manifest-yaml-pool.ts`).
 * Answers the same errors (of the YAML and of the schema), or the parsed value with the positions
 * the checks left to the event loop may ask for.
 */
import { parentPort } from 'node:worker_threads';
import { checkManifestShape, manifestPlaces, readManifestYaml, type ManifestError, type ManifestPlaces } from './load-manifest.js';

export type YamlRequest = { id: number; text: string };
export type YamlAnswer = { id: number } & ({ ok: true; raw: unknown; places: ManifestPlaces } | { ok: false; errors: ManifestError[] });

const port = parentPort;
if (port) {
  port.on('message', ({ id, text }: YamlRequest) => {
    const read = readManifestYaml(text);
    // The schema's check too: it refuses the big documents here, so that they never cross to the event loop.
    const shaped = read.ok ? checkManifestShape(read.raw, read.locate) : read;
    const answer: YamlAnswer =
      read.ok && shaped.ok ? { id, ok: true, raw: read.raw, places: manifestPlaces(read.document, read.at) } : { id, ok: false, errors: shaped.ok ? [] : shaped.errors };
    port.postMessage(answer);
  });
}
