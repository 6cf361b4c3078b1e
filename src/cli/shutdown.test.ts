import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { stopWithin } from './shutdown.js';

const log = pino({ level: 'silent' });
const never = () => new Promise<void>(() => undefined);

describe('stopWithin', () => {
  it('releases once the work going is done, handing nothing back', async () => {
    const steps: string[] = [];
    const clean = await stopWithin(
      {
        drain: async () => void steps.push('drain'),
        handBack: () => void steps.push('hand back'),
        release: async () => void steps.push('release'),
      },
      { graceMs: 60_000, log },
    );
    expect(clean).toBe(true);
    expect(steps).toEqual(['drain', 'release']);
  });

  it('hands the runs back when the grace is over, then releases', async () => {
    const steps: string[] = [];
    let finish: () => void = () => undefined;
    const clean = await stopWithin(
      {
        drain: () => new Promise<void>((resolve) => (finish = resolve)),
        handBack: () => {
          steps.push('hand back');
          finish();
        },
        release: async () => void steps.push('release'),
      },
      { graceMs: 10, log },
    );
    expect(clean).toBe(false);
    expect(steps).toEqual(['hand back', 'release']);
  });

  it('returns though nothing it waits for ever ends (a GitHub that does not answer)', async () => {
    const steps: string[] = [];
    const clean = await stopWithin(
      { drain: never, handBack: () => void steps.push('hand back'), release: () => (steps.push('release'), never()) },
      { graceMs: 10, log, handBackMs: 10 },
    );
    expect(clean).toBe(false);
    expect(steps).toEqual(['hand back', 'release']);
  });

  it('releases even when waiting for the work failed', async () => {
    const steps: string[] = [];
    const clean = await stopWithin(
      { drain: async () => Promise.reject(new Error('queue gone')), handBack: () => void steps.push('hand back'), release: async () => void steps.push('release') },
      { graceMs: 60_000, log },
    );
    expect(clean).toBe(true);
    expect(steps).toEqual(['release']);
  });
});
