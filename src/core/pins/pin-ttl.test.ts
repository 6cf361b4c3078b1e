import { describe, expect, it } from 'vitest';
import { defaultPinTtl, effectivePinTtl, formatTtl, pinTtlProblem } from './pin-ttl.js';

const DAY = 86_400_000;

describe('pin TTLs', () => {
  it.each([
    [14 * DAY, '14 d'],
    [365 * DAY, '365 d'],
    [36 * 3_600_000, '36 h'],
    [90 * 60_000, '90 min'],
    [5000, '5 s'],
    [1500, '1,500 ms'],
    [DAY + 1, '1.0 d'],
  ])('formats %i ms as %s', (ms, text) => {
    expect(formatTtl(ms)).toBe(text);
  });

  it('takes the manifest’s TTL, else the default, never past the cap', () => {
    const limits = { defaultMs: 30 * DAY, maxMs: 90 * DAY };
    expect(effectivePinTtl(undefined, limits)).toBe(30 * DAY);
    expect(effectivePinTtl(5000, limits)).toBe(5000);
    expect(effectivePinTtl(400 * DAY, limits)).toBe(90 * DAY);
  });

  it('refuses a TTL past the cap, naming what asked, the cap and its variable', () => {
    expect(pinTtlProblem(365 * DAY, defaultPinTtl, '`pin.ttl`')).toBeNull();
    expect(pinTtlProblem(400 * DAY, defaultPinTtl, '`pin.ttl`')).toBe(
      '`pin.ttl` asks for 400 d, and this deployment pins outputs for at most 365 d (PIN_TTL_MAX).',
    );
  });
});
