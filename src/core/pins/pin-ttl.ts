/**
 * How long outputs stay pinned: a manifest's `pin.ttl`, `PIN_TTL_DEFAULT` when it names none,
 * and never more than `PIN_TTL_MAX`. A manifest (or a `/pin`) asking for more is refused, naming
 * the cap, rather than quietly pinned for less than it said: whoever archives needs to know.
 */
const DAY = 86_400_000;

export interface PinTtlLimits {
  /** PIN_TTL_DEFAULT: how long a run's outputs stay pinned when its manifest does not say. */
  defaultMs: number;
  /** PIN_TTL_MAX: the longest a manifest's `pin.ttl` or a `/pin` may ask for. */
  maxMs: number;
}

/** The configuration's defaults (README "Configuration"): 30 days, at most 365. */
export const defaultPinTtl: PinTtlLimits = { defaultMs: 30 * DAY, maxMs: 365 * DAY };

/** Why `askedMs` cannot be granted (what asked, the cap and the variable that sets it), or null. */
export function pinTtlProblem(askedMs: number, limits: PinTtlLimits, what: string): string | null {
  if (askedMs <= limits.maxMs) return null;
  return `${what} asks for ${formatTtl(askedMs)}, and this deployment pins outputs for at most ${formatTtl(limits.maxMs)} (PIN_TTL_MAX).`;
}

/** The TTL a run's outputs get: what its manifest asked for, else the default, within the cap. */
export function effectivePinTtl(askedMs: number | undefined, limits: PinTtlLimits): number {
  return Math.min(askedMs ?? limits.defaultMs, limits.maxMs);
}

/** A TTL as a person writes it: `14 d`, `36 h`, `90 min`, `5 s`, in the largest unit that is exact. */
export function formatTtl(ms: number): string {
  const units: [number, string][] = [
    [DAY, 'd'],
    [3_600_000, 'h'],
    [60_000, 'min'],
    [1000, 's'],
  ];
  for (const [size, name] of units) if (ms >= size && ms % size === 0) return `${(ms / size).toLocaleString('en-US')} ${name}`;
  return ms >= DAY ? `${(ms / DAY).toFixed(1)} d` : `${ms.toLocaleString('en-US')} ms`;
}
