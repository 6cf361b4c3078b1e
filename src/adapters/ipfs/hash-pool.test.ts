import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { sha256Digest } from './hash-pool.js';

describe('sha256Digest', () => {
  it('gives sha2-256 whether the block is lent to a hashing thread or hashed here, and the lent bytes come back', async () => {
    const data = randomBytes(1024 * 1024 + 3);
    const expected = createHash('sha256').update(data).digest();
    const lent = new Uint8Array(new ArrayBuffer(data.length + 20), 10, data.length);
    lent.set(data);
    const [fromThread, here, small] = await Promise.all([sha256Digest(lent, true), sha256Digest(Uint8Array.from(data)), sha256Digest(data.subarray(0, 10), true)]);
    expect(Buffer.from(fromThread.digest)).toEqual(expected);
    expect(Buffer.from(fromThread.block).equals(data)).toBe(true);
    expect(Buffer.from(here.digest)).toEqual(expected);
    expect(Buffer.from(small.digest)).toEqual(createHash('sha256').update(data.subarray(0, 10)).digest());
  });

  it('keeps no process alive with its threads started and idle, or idle after work', async () => {
    const pool = fileURLToPath(new URL('./hash-pool.ts', import.meta.url));
    const script = `
      const loaded = await import(${JSON.stringify(pool)});
      const { startHashing, sha256Digest } = loaded.startHashing ? loaded : loaded.default;
      startHashing();
      if (process.argv[1] === 'work') await sha256Digest(new Uint8Array(new ArrayBuffer(1 << 20)), true);
      console.log('done');`;
    for (const mode of ['idle', 'work']) {
      // The process ends by itself; a thread holding it open would run into the timeout and fail.
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, mode], { timeout: 60_000 });
      expect(stdout.trim()).toBe('done');
    }
  });
});
