/**
 * The RunLogs section of the RunStore contract (src/ports/run-store.ts): a run's log as chunks
 * at stream offsets, read back in bounded pieces, capped by keeping the head and the tail with
 * one cut between them. Called from `runStoreContract` with the store of the running test.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LOG_CHUNK_MAX_BYTES, LogOffsetError, type RunStore } from '../../src/ports/run-store.js';

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');

export function logsContract(store: () => RunStore): void {
  describe('RunLogs', () => {
    /** Appends `chunks` in order under a cap, returning the last answer. */
    async function write(runId: string, chunks: string[], maxBytes = 1024 * 1024) {
      let info = await store().logInfo(runId);
      for (const chunk of chunks) info = await store().appendLog(runId, { offset: info.size, bytes: Buffer.from(chunk) }, maxBytes);
      return info;
    }

    /** Every byte the store still holds, in order, read as a follower would, with the offsets it jumped. */
    async function readAll(runId: string, limit?: number): Promise<{ text: string; jumps: Array<[number, number]> }> {
      let offset = 0;
      let all = '';
      const jumps: Array<[number, number]> = [];
      for (;;) {
        const read = await store().readLog(runId, offset, limit);
        if (read.offset !== offset) jumps.push([offset, read.offset]);
        if (read.bytes.byteLength === 0) return { text: all, jumps };
        all += text(read.bytes);
        offset = read.offset + read.bytes.byteLength;
      }
    }

    it('has an empty log for a run that wrote nothing', async () => {
      const runId = randomUUID();
      expect(await store().logInfo(runId)).toStrictEqual({ size: 0, cut: null });
      const read = await store().readLog(runId, 0);
      expect({ ...read, bytes: text(read.bytes) }).toStrictEqual({ size: 0, cut: null, offset: 0, bytes: '' });
    });

    it('appends chunks at the end and reads them back from any offset, up to the limit', async () => {
      const runId = randomUUID();
      expect(await write(runId, ['hello\n', 'world ✓\n'])).toStrictEqual({ size: 16, cut: null });
      expect(text((await store().readLog(runId, 0)).bytes)).toBe('hello\nworld ✓\n');
      const middle = await store().readLog(runId, 3, 6);
      expect({ offset: middle.offset, bytes: text(middle.bytes), size: middle.size }).toStrictEqual({ offset: 3, bytes: 'lo\nwor', size: 16 });
      expect((await store().readLog(runId, 16)).bytes.byteLength).toBe(0);
      expect((await store().readLog(runId, 400)).bytes.byteLength).toBe(0);
      expect((await readAll(runId, 5)).text).toBe('hello\nworld ✓\n');
    });

    it('keeps bytes as they were written, whatever they are', async () => {
      const runId = randomUUID();
      const bytes = Uint8Array.from([0, 255, 10, 0xc3, 0x28, 13, 10, 7]);
      await store().appendLog(runId, { offset: 0, bytes }, 1024);
      expect([...(await store().readLog(runId, 0)).bytes]).toStrictEqual([...bytes]);
    });

    it('keeps the logs of different runs apart', async () => {
      const [a, b] = [randomUUID(), randomUUID()];
      await write(a, ['a1\n', 'a2\n']);
      await write(b, ['b1\n']);
      expect((await readAll(a)).text).toBe('a1\na2\n');
      expect((await readAll(b)).text).toBe('b1\n');
    });

    it('refuses an append that is not at the end, and takes a repeated one as done', async () => {
      const runId = randomUUID();
      await write(runId, ['first\n']);
      await expect(store().appendLog(runId, { offset: 9, bytes: Buffer.from('gap\n') }, 1024)).rejects.toBeInstanceOf(LogOffsetError);
      await expect(store().appendLog(runId, { offset: 3, bytes: Buffer.from('overlap\n') }, 1024)).rejects.toThrow(/ends at byte 6, not 3/);
      // A writer that did not hear back sends its chunk again: nothing changes.
      expect(await store().appendLog(runId, { offset: 0, bytes: Buffer.from('first\n') }, 1024)).toStrictEqual({ size: 6, cut: null });
      expect((await readAll(runId)).text).toBe('first\n');
    });

    it('bounds what one call takes and returns', async () => {
      const runId = randomUUID();
      const big = Buffer.alloc(LOG_CHUNK_MAX_BYTES, 'x');
      await expect(store().appendLog(runId, { offset: 0, bytes: Buffer.alloc(LOG_CHUNK_MAX_BYTES + 1) }, 64 * LOG_CHUNK_MAX_BYTES)).rejects.toThrow(/at most/);
      await store().appendLog(runId, { offset: 0, bytes: big }, 64 * LOG_CHUNK_MAX_BYTES);
      await store().appendLog(runId, { offset: LOG_CHUNK_MAX_BYTES, bytes: big }, 64 * LOG_CHUNK_MAX_BYTES);
      expect((await store().readLog(runId, 0, 10 * LOG_CHUNK_MAX_BYTES)).bytes.byteLength).toBe(LOG_CHUNK_MAX_BYTES);
      const across = await store().readLog(runId, LOG_CHUNK_MAX_BYTES - 10);
      expect(across.bytes.byteLength).toBe(LOG_CHUNK_MAX_BYTES);
      expect(across.offset).toBe(LOG_CHUNK_MAX_BYTES - 10);
    });

    it('past the cap keeps the head and the newest tail, and says what was cut', async () => {
      const runId = randomUUID();
      const line = (n: number) => `line ${String(n).padStart(3, '0')}\n`; // 9 bytes
      const chunks = Array.from({ length: 40 }, (_, i) => line(i));
      const info = await write(runId, chunks, 90);
      // The head: chunks starting in the first 45 bytes (0, 9, 18, 27, 36), 45 bytes; the tail: the newest 45 bytes.
      expect(info).toStrictEqual({ size: 360, cut: { from: 45, to: 315 } });
      expect(await store().logInfo(runId)).toStrictEqual(info);
      const all = await readAll(runId);
      expect(all.text).toBe(chunks.slice(0, 5).join('') + chunks.slice(35).join(''));
      expect(all.jumps).toStrictEqual([[45, 315]]);
      // A reader at an offset that was cut goes on from the end of the cut; one before it stops at the cut.
      const inCut = await store().readLog(runId, 100);
      expect({ offset: inCut.offset, bytes: text(inCut.bytes) }).toStrictEqual({ offset: 315, bytes: chunks.slice(35).join('') });
      const head = await store().readLog(runId, 40);
      expect({ offset: head.offset, bytes: text(head.bytes), cut: head.cut }).toStrictEqual({ offset: 40, bytes: ' 004\n', cut: { from: 45, to: 315 } });
    });

    it('moves the cut forward as the tail goes on, offsets unchanged', async () => {
      const runId = randomUUID();
      await write(runId, ['aaaa\n', 'bbbb\n', 'cccc\n', 'dddd\n'], 10);
      expect(await store().logInfo(runId)).toStrictEqual({ size: 20, cut: { from: 5, to: 15 } });
      const follower = await store().readLog(runId, 15);
      expect(text(follower.bytes)).toBe('dddd\n');
      await write(runId, ['eeee\n'], 10);
      // The follower had read up to 20; that is where the log goes on.
      expect(text((await store().readLog(runId, 20)).bytes)).toBe('eeee\n');
      // One that stopped at 15 finds it cut now, and goes on from 20.
      expect((await store().readLog(runId, 15)).offset).toBe(20);
      expect((await readAll(runId)).text).toBe('aaaa\neeee\n');
    });

    it('keeps a chunk that starts in the head whole, and the newest chunk even when it alone passes the cap', async () => {
      const runId = randomUUID();
      await write(runId, ['0123456789abcdef\n'], 20); // 17 bytes starting at 0: all head
      await write(runId, ['x'.repeat(30) + '\n'], 20);
      expect(await store().logInfo(runId)).toStrictEqual({ size: 48, cut: null });
      await write(runId, ['y\n'], 20);
      expect(await store().logInfo(runId)).toStrictEqual({ size: 50, cut: { from: 17, to: 48 } });
      expect((await readAll(runId)).text).toBe('0123456789abcdef\ny\n');
    });
  });
}
