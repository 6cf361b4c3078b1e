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
/** Sent once, when the worker has loaded and can read: its start counts against no manifest's deadline. */
export type YamlReady = { ready: true };

function answer(id: number, text: string): YamlAnswer {
  const read = readManifestYaml(text);
  // The schema's check too: it refuses the big documents here, so that they never cross to the event loop.
  const shaped = read.ok ? checkManifestShape(read.raw, read.locate) : read;
  return read.ok && shaped.ok ? { id, ok: true, raw: read.raw, places: manifestPlaces(read.document, read.at) } : { id, ok: false, errors: shaped.ok ? [] : shaped.errors };
}

/**
 * A small manifest read once before the worker says it is ready: the parser's and the schema's
 * first run (compiling their code) is part of the worker's start, not of the first real manifest's
 * deadline, which on a busy machine it could use up alone.
 */
const warmUp = 'version: 1\ntasks:\n  warm:\n    uses: container\n    params:\n      n: { type: string, pattern: "^[a-z]+$", default: abc }\n';

const port = parentPort;
if (port) {
  port.on('message', ({ id, text }: YamlRequest) => port.postMessage(answer(id, text)));
  answer(0, warmUp);
  port.postMessage({ ready: true } satisfies YamlReady);
}
