/**
 * Pin ends kept beside the data: neither the embedded store nor Kubo knows when a pin should
 * expire (FACTS "IPFS"), so every backend records `{cid, expiresAt}` here for the job that unpins.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export class PinRecords {
  private readonly ipfsDir: string;

  /** Records go to `<dataDir>/ipfs/pins.jsonl`, one JSON object a line. */
  constructor(dataDir: string) {
    this.ipfsDir = join(resolve(dataDir), 'ipfs');
  }

  async record(cid: string, pinUntil: Date | undefined): Promise<void> {
    const record = { cid, expiresAt: pinUntil === undefined ? null : pinUntil.toISOString() };
    await mkdir(this.ipfsDir, { recursive: true });
    await appendFile(join(this.ipfsDir, 'pins.jsonl'), `${JSON.stringify(record)}\n`);
  }
}
