/**
 * Default sandbox limits and parsers for the human-friendly sizes and durations that
 * configuration and manifests use (`4g`, `512m`, `6h`, `90s`).
 */
import { z } from 'zod';
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

/** Size of the writable tmpfs at /tmp; it counts against the container's memory limit. */
export const DEFAULT_TMPFS_BYTES = 256 * MiB;

/** Binary units, as Docker's own `--memory 4g` reads them. */
const sizeUnits: Record<string, number> = { '': 1, b: 1, k: KiB, kb: KiB, m: MiB, mb: MiB, g: GiB, gb: GiB, t: 1024 * GiB, tb: 1024 * GiB };

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

const sizePattern = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;
const durationPattern = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/i;

/** A size such as `4g`, `512m`, `64k` or a plain byte count; parses to bytes. */
export const sizeSchema = z
  .union([z.number(), z.string()])
  .transform((value, ctx): number => {
    const text = String(value).trim();
    const match = sizePattern.exec(text);
    const unit = match ? sizeUnits[match[2]!.toLowerCase()] : undefined;
    if (!match || unit === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `"${text}" is not a size: use a number with an optional unit b, k, m, g or t (e.g. 512m, 4g)`,
      });
      return z.NEVER;
    }
    const bytes = Math.round(Number(match[1]) * unit);
    if (bytes <= 0 || !Number.isSafeInteger(bytes)) {
      ctx.addIssue({ code: 'custom', message: `size "${text}" must be positive and below 2^53 bytes` });
      return z.NEVER;
    }
    return bytes;
  });

/** A duration such as `6h`, `30m`, `90s`, `2d` or `500ms`; parses to milliseconds. */
export const durationSchema = z.string().transform((value, ctx): number => {
  const text = value.trim();
  const match = durationPattern.exec(text);
  const unit = match ? durationUnits[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `"${text}" is not a duration: use a number with a unit ms, s, m, h or d (e.g. 90s, 30m, 6h, 2d)`,
    });
    return z.NEVER;
  }
  const ms = Math.round(Number(match[1]) * unit);
  if (ms <= 0) {
    ctx.addIssue({ code: 'custom', message: `duration "${text}" must be positive` });
    return z.NEVER;
  }
  return ms;
});

/** Parses a size, throwing an error that names `field` (e.g. `TASK_MGMT_MEMORY`). */
export function parseSize(value: string | number, field = 'size'): number {
  return parseOrThrow(sizeSchema, value, field);
}

/** Parses a duration, throwing an error that names `field` (e.g. `timeout`). */
export function parseDuration(value: string, field = 'duration'): number {
  return parseOrThrow(durationSchema, value, field);
}

function parseOrThrow<T>(schema: z.ZodType<T, unknown>, value: unknown, field: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const reason = result.error.issues.map((issue) => issue.message).join('; ');
  throw new Error(`${field}: ${reason}`, { cause: result.error });
}
