/**
 * Serving a run's log: `GET /api/runs/:id/logs` streams it from the run store in bounded reads.
 * The baseline is the least any server does: the same bytes piped from a plain file. Cases: a log
 * stored whole (LOG_MAX_BYTES raised to hold it), and the same log under the default cap of
 * 64 MiB (its head and tail, with the line saying what was cut). Each side is served by a
 * process of its own (bench/log-serving-server.ts), so its peak RSS and longest event-loop
 * delay are its own. Before logs moved to the store, an 800 MB log served this way took the
 * app to 3.3 GB and blocked its event loop while the file was read whole.
 *
 * BENCH_LOG_MIB sets the log's size (default 256), BENCH_LOG_READERS how many clients read it at
 * once (default 1).
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SqliteRunStore } from '../src/adapters/store/sqlite-run-store.js';
import { DEFAULT_LOG_MAX_BYTES } from '../src/worker/run-worker.js';
import { LogSink } from '../src/worker/log-sink.js';
import { newRun } from '../test/contracts/run-store.contract.js';
import { projectRoot } from '../test/support/app-process.js';
import { perSecond, ratio, withTempDir, type Benchmark, type BenchmarkResult, type Cell } from './report.js';

const MiB = 1024 * 1024;
const LINE = `${'log line '.repeat(11)}…`; // 100 bytes with its newline
const TOKEN = 'bench-service-token-0123456789';

interface Served {
  bytes: number;
  ms: number;
  idleRssMiB: number;
  peakRssMiB: number;
  maxDelayMs: number;
  p99DelayMs: number;
}

/** Starts a server process on `dir`, fetches `path` to its end `readers` times at once without keeping it, and stops the server. */
async function serve(dir: string, path: string, readers: number): Promise<Served> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(projectRoot, 'bench', 'log-serving-server.ts'), dir, TOKEN], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  try {
    const started = JSON.parse(String((await lines.next()).value)) as { port: number; idleRssMiB: number };
    const began = performance.now();
    const read = async () => {
      const response = await fetch(`http://127.0.0.1:${started.port}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      if (!response.ok) throw new Error(`${path} answered ${response.status}: ${await response.text()}`);
      let count = 0;
      for await (const chunk of response.body!) count += (chunk as Uint8Array).byteLength;
      return count;
    };
    const bytes = (await Promise.all(Array.from({ length: readers }, read))).reduce((sum, count) => sum + count, 0);
    const ms = performance.now() - began;
    child.kill('SIGTERM');
    const stats = JSON.parse(String((await lines.next()).value)) as { maxDelayMs: number; p99DelayMs: number; peakRssMiB: number };
    return { bytes, ms, idleRssMiB: started.idleRssMiB, ...stats };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

async function run(): Promise<BenchmarkResult> {
  const logBytes = Number(process.env.BENCH_LOG_MIB ?? 256) * MiB;
  const readers = Number(process.env.BENCH_LOG_READERS ?? 1);
  const lineCount = Math.ceil(logBytes / (LINE.length + 1));
  return withTempDir('log-serving', async (dir) => {
    const store = await SqliteRunStore.open(join(dir, 'task-mgmt.sqlite'));
    const whole = await store.createRun(newRun(), new Date());
    const capped = await store.createRun(newRun(), new Date());
    const file = createWriteStream(join(dir, 'log.txt'));
    const writing = performance.now();
    try {
      const wholeSink = new LogSink({ store, runId: whole.id, maxBytes: logBytes + 64 * MiB });
      const cappedSink = new LogSink({ store, runId: capped.id, maxBytes: DEFAULT_LOG_MAX_BYTES });
      for (let n = 0; n < lineCount; n += 1) {
        await wholeSink.line(LINE);
        await cappedSink.line(LINE);
        if (!file.write(`${LINE}\n`)) await once(file, 'drain');
      }
      await Promise.all([wholeSink.close(), cappedSink.close(), new Promise((resolve) => file.end(resolve))]);
    } finally {
      await store.close();
    }
    const writeMs = performance.now() - writing;

    const sides: Array<[string, string]> = [
      ['baseline: the file, piped', '/file'],
      ['store, whole log (cap raised)', `/api/runs/${whole.id}/logs`],
      [`store, LOG_MAX_BYTES ${DEFAULT_LOG_MAX_BYTES / MiB} MiB`, `/api/runs/${capped.id}/logs`],
    ];
    const served: Array<[string, Served]> = [];
    for (const [name, path] of sides) served.push([name, await serve(dir, path, readers)]);
    const baseline = perSecond(served[0]![1].bytes, served[0]![1].ms);
    const rows: Record<string, Cell>[] = served.map(([name, s]) => ({
      case: name,
      mib: s.bytes / MiB,
      mibPerSecond: (perSecond(s.bytes, s.ms) ?? 0) / MiB,
      ratio: ratio(perSecond(s.bytes, s.ms), baseline),
      idle: s.idleRssMiB,
      peak: s.peakRssMiB,
      maxDelay: s.maxDelayMs,
      p99Delay: s.p99DelayMs,
    }));
    return {
      name: 'log-serving',
      title: `GET /api/runs/:id/logs of a ${logBytes / MiB} MiB log (${lineCount.toLocaleString('en-US')} lines) by ${readers} client${readers === 1 ? '' : 's'} at once, each side in its own server process`,
      columns: [
        { key: 'case', header: 'case', align: 'left' },
        { key: 'mib', header: 'MiB served', digits: 1 },
        { key: 'mibPerSecond', header: 'MiB/s', digits: 0 },
        { key: 'ratio', header: 'ratio', digits: 2 },
        { key: 'idle', header: 'idle RSS MiB', digits: 0 },
        { key: 'peak', header: 'peak RSS MiB', digits: 0 },
        { key: 'maxDelay', header: 'max loop delay ms', digits: 1 },
        { key: 'p99Delay', header: 'p99 loop delay ms', digits: 1 },
      ],
      rows,
      ratios: served.slice(1).map(([name, s]) => ({ case: name, ratio: ratio(perSecond(s.bytes, s.ms), baseline) })),
      notes: [
        `writing the log through LogSink twice (whole and capped) and to the file took ${(writeMs / 1000).toFixed(1)} s`,
        'peak RSS is the server process’s own high-water mark (getrusage), idle RSS its size once listening',
      ],
    };
  });
}

export const logServing: Benchmark = { name: 'log-serving', run };
