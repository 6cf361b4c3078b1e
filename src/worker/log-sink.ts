/**
 * Where a run's log lines go: the whole log to a file in DATA_DIR, and the last lines kept in
 * memory for the check run's `output.text`.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';

export class LogSink {
  private readonly tail: string[] = [];
  private tailChars = 0;
  private readonly file: WriteStream;

  constructor(
    readonly path: string,
    private readonly maxTailChars = 60_000,
    private readonly maxTailLines = 400,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.file = createWriteStream(path, { flags: 'a' });
  }

  line(text: string): void {
    const line = text.length > 4000 ? `${text.slice(0, 4000)}… (line cut)` : text;
    this.file.write(`${line}\n`);
    this.tail.push(line);
    this.tailChars += line.length + 1;
    while (this.tail.length > this.maxTailLines || this.tailChars > this.maxTailChars) {
      this.tailChars -= this.tail.shift()!.length + 1;
    }
  }

  tailText(): string {
    return this.tail.join('\n');
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.file.end(resolve));
  }
}
