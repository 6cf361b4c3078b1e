/**
 * Default sandbox limits and parsers for the human-friendly sizes and durations that
 * configuration and manifests use (`4g`, `512m`, `6h`, `90s`).
 */
import type { SandboxLimits } from '../../ports/executor.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const DEFAULT_SANDBOX_LIMITS: Readonly<SandboxLimits> = Object.freeze({
  memoryBytes: 1 * GiB,
  nanoCpus: 1_000_000_000,
  pidsLimit: 256,
  timeoutMs: 60 * 60 * 1000,
});

/** BUILD_TIMEOUT unset: a build that takes longer is stopped and its run fails. */
export const DEFAULT_BUILD_TIMEOUT_MS = 30 * 60 * 1000;

/** Size of the writable tmpfs at /tmp; it counts against the container's memory limit. */
export const DEFAULT_TMPFS_BYTES = 256 * MiB;

export { durationSchema, parseDuration, parseSize, sizeSchema } from '../../core/runs/units.js';
