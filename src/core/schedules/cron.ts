/**
 * Cron expressions of `schedule:` (README "Schedules"): five fields (minute hour day-of-month month
 * day-of-week) read by cron-parser, in a time zone (UTC unless given). Pure functions of a date,
 * so the scheduler's tests move a fake clock instead of waiting.
 */
import { CronExpressionParser } from 'cron-parser';

export interface CronSpec {
  cron: string;
  /** An IANA time zone, e.g. Europe/Paris; UTC when unset. */
  timezone: string;
}

/** Why `spec` is not a schedule, in words for a manifest error, or null. */
export function cronProblem(spec: CronSpec): string | null {
  const fields = spec.cron.trim().split(/\s+/);
  if (fields.length !== 5) return `\`${spec.cron}\` has ${fields.length} fields; a schedule has five: minute hour day-of-month month day-of-week`;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: spec.timezone });
  } catch {
    return `\`${spec.timezone}\` is not a time zone (use an IANA name such as Europe/Paris)`;
  }
  try {
    CronExpressionParser.parse(spec.cron, { tz: spec.timezone, currentDate: new Date(0) }).next();
  } catch (error) {
    return `\`${spec.cron}\` is not a cron expression (${error instanceof Error ? error.message : String(error)})`;
  }
  return null;
}

/** The first firing strictly after `after`. */
export function nextFiring(spec: CronSpec, after: Date): Date {
  return CronExpressionParser.parse(spec.cron, { tz: spec.timezone, currentDate: after }).next().toDate();
}

/** The latest firing at or before `at`. */
export function lastFiring(spec: CronSpec, at: Date): Date {
  // prev() is strictly before its start: start a millisecond later so a firing at `at` counts.
  return CronExpressionParser.parse(spec.cron, { tz: spec.timezone, currentDate: new Date(at.getTime() + 1) }).prev().toDate();
}

/** The shortest time between two firings, over the next `count` of them after `from`. */
export function shortestInterval(spec: CronSpec, from: Date, count = 16): number {
  const expression = CronExpressionParser.parse(spec.cron, { tz: spec.timezone, currentDate: from });
  let previous = expression.next().toDate().getTime();
  let shortest = Infinity;
  for (let i = 1; i < count; i += 1) {
    const next = expression.next().toDate().getTime();
    shortest = Math.min(shortest, next - previous);
    previous = next;
  }
  return shortest;
}
