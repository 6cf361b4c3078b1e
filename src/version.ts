/** The version of task-mgmt that is running, as its package.json says (provenance records carry it). */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

let known: string | undefined;

/** `version` of task-mgmt's package.json above this module (src/ in development, dist/src once built); "unknown" if none is found. */
export function taskMgmtVersion(): string {
  known ??= findVersion(import.meta.dirname);
  return known;
}

function findVersion(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      const parsed = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (parsed.name === 'task-mgmt' && typeof parsed.version === 'string') return parsed.version;
    } catch {
      // no package.json here, or not one that can be read: look higher up
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}
