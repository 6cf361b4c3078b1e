import { describe, expect, it } from 'vitest';
import { DEFAULT_SANDBOX_LIMITS, parseDuration, parseSize } from './sandbox-defaults.js';

describe('parseSize', () => {
  it.each([
    ['4g', 4 * 1024 ** 3],
    ['4G', 4 * 1024 ** 3],
    ['4gb', 4 * 1024 ** 3],
    ['512m', 512 * 1024 ** 2],
    ['1.5g', 1.5 * 1024 ** 3],
    ['64k', 64 * 1024],
    ['1t', 1024 ** 4],
    ['100', 100],
    ['100b', 100],
    [' 2m ', 2 * 1024 ** 2],
    [1024, 1024],
  ] as const)('%j is %d bytes', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  it.each(['', 'g', '4x', '-1m', '0', '0m', 'four gigs', '4 g b', '1e3m'])('refuses %j', (input) => {
    expect(() => parseSize(input, 'memory')).toThrow(/^memory: /);
  });

  it('explains the accepted form', () => {
    expect(() => parseSize('4x', 'TASK_MGMT_MEMORY')).toThrow('TASK_MGMT_MEMORY: "4x" is not a size: use a number with an optional unit');
  });
});

describe('parseDuration', () => {
  it.each([
    ['6h', 6 * 3_600_000],
    ['30m', 30 * 60_000],
    ['90s', 90_000],
    ['2d', 2 * 86_400_000],
    ['500ms', 500],
    ['1.5h', 5_400_000],
    ['10M', 600_000],
  ] as const)('%j is %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each(['', '6', 'h', '6w', '-5m', '0s', 'six hours', '1h30m'])('refuses %j', (input) => {
    expect(() => parseDuration(input, 'timeout')).toThrow(/^timeout: /);
  });
});

describe('DEFAULT_SANDBOX_LIMITS', () => {
  it('is one CPU, 1 GiB, 256 pids and one hour', () => {
    expect(DEFAULT_SANDBOX_LIMITS).toEqual({
      memoryBytes: 1024 ** 3,
      nanoCpus: 1e9,
      pidsLimit: 256,
      timeoutMs: 3_600_000,
    });
  });
});
