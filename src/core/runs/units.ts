/**
 * Human units: sizes (`4g`, `512m`) and durations (`6h`, `90s`) as configuration and manifests
 * write them, and their readable forms for check runs and logs.
 */
import { z } from 'zod';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

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


export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${minutes % 60} min`;
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
