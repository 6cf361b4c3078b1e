/**
 * What every benchmark hands back to bench/run.ts, and the small tools they share: timing, a
 * bound on waiting, temp folders that always go away, and the aligned tables.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Cell = number | string | null;

export interface Column {
  key: string;
  header: string;
  /** Decimal places for numbers in this column. */
  digits?: number;
  /** Names and labels read better left-aligned; numbers are right-aligned. */
  align?: 'left' | 'right';
}

export interface RatioLine {
  /** The case measured against the baseline. */
  case: string;
  /** Case throughput ÷ baseline throughput: 1 means as fast as the baseline, 0.25 four times slower. */
  ratio: number | null;
}

export interface BenchmarkResult {
  name: string;
  title: string;
  columns: Column[];
  rows: Record<string, Cell>[];
  ratios: RatioLine[];
  notes: string[];
}

export interface Benchmark {
  name: string;
  run(): Promise<BenchmarkResult>;
}

/** Throughput of a case over its baseline's; null when either was not measured. */
export function ratio(value: number | null, baseline: number | null): number | null {
  if (value === null || baseline === null || baseline === 0) return null;
  return value / baseline;
}

export function perSecond(count: number, ms: number): number | null {
  return ms > 0 ? (count * 1000) / ms : null;
}

/**
 * Waits for `promise` at most `ms`: true when it settled in time. The work is not stopped;
 * callers stop it themselves (close a worker, abort a signal) and report what got done.
 */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Counts finished items and resolves `reached` at the target. */
export class Countdown {
  count = 0;
  readonly reached: Promise<void>;
  private resolve: () => void = () => undefined;

  constructor(readonly target: number) {
    this.reached = new Promise((resolve) => {
      this.resolve = resolve;
    });
    if (target <= 0) this.resolve();
  }

  tick(): void {
    this.count += 1;
    if (this.count === this.target) this.resolve();
  }
}

/** Runs `body` with a fresh temp folder, removed afterwards whatever happens. */
export async function withTempDir<T>(label: string, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `task-mgmt-bench-${label}-`));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Peak resident set size while `body` runs, sampled every 20 ms. */
export async function trackRss<T>(body: () => Promise<T>): Promise<{ value: T; rssBefore: number; rssPeak: number }> {
  const rssBefore = process.memoryUsage.rss();
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  }, 20);
  try {
    const value = await body();
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    return { value, rssBefore, rssPeak };
  } finally {
    clearInterval(sampler);
  }
}

export function formatCell(value: Cell, digits = 0): string {
  if (value === null) return '—';
  if (typeof value === 'string') return value;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** One line per row, columns padded to their widest cell. */
export function formatTable(columns: Column[], rows: Record<string, Cell>[]): string {
  const cells = rows.map((row) => columns.map((column) => formatCell(row[column.key] ?? null, column.digits)));
  const widths = columns.map((column, i) => Math.max(column.header.length, ...cells.map((line) => line[i]?.length ?? 0)));
  const align = (text: string, i: number) =>
    columns[i]?.align === 'left' ? text.padEnd(widths[i] ?? 0) : text.padStart(widths[i] ?? 0);
  const lines = [
    columns.map((column, i) => align(column.header, i)).join('  '),
    widths.map((width) => '-'.repeat(width)).join('  '),
    ...cells.map((line) => line.map(align).join('  ')),
  ];
  return lines.join('\n');
}
