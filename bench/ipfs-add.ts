/**
 * How fast adding to IPFS is against the floor any content addressing pays: reading the same
 * bytes and hashing them with sha256.
 *
 * - Whole process: `task-mgmt add` (the compiled CLI, embedded store, a fresh DATA_DIR) of one
 *   large file of random bytes under each import profile, against a `node` process that streams
 *   the same file through node:crypto's sha256. Start-up counts on both sides, as it does for a
 *   user. Rounds alternate the three processes, each round in a different order, and each ratio
 *   is the median of its rounds' ratios, so a burst of load from elsewhere moves one round only.
 * - In process: `EmbeddedIpfsStore.addPath` of a folder of many small files, where per-file costs
 *   (open, stat, one block per file, the directory node) dominate, against hashing each file.
 *
 * BENCH_IPFS_ADD_MIB sets the large file's size (default 512): 2048 checks memory on a 2 GiB add.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EmbeddedIpfsStore } from '../src/adapters/ipfs/embedded-ipfs-store.js';
import { projectRoot } from '../test/support/app-process.js';
import { perSecond, ratio, trackRss, withTempDir, type Benchmark, type BenchmarkResult, type Cell } from './report.js';

const MiB = 1024 * 1024;
const LARGE_FILE_MIB = Number(process.env.BENCH_IPFS_ADD_MIB ?? 512);
const ROUNDS = 3;
const PROFILES = ['unixfs-v0-2015', 'unixfs-v1-2025'] as const;
const SMALL_FILES = 5000;
const SMALL_FILE_MAX_BYTES = 8 * 1024;
/** Bound on each measured step; a process still running then is killed and reported as capped. */
const CAP_MS = 300_000;
/** Files EmbeddedIpfsStore reads at once (FILES_IN_FLIGHT in import-tree.ts). */
const FILES_IN_FLIGHT = 4;

/** The baseline process: what `sha256sum` does, in Node. */
const SHA256_SCRIPT = `
const { createHash } = require('node:crypto');
const { createReadStream } = require('node:fs');
const hash = createHash('sha256');
createReadStream(process.argv[1], { highWaterMark: 1024 * 1024 }).pipe(hash).on('finish', () => console.log(hash.digest('hex')));
`;
/** Loaded into every measured process: it reports its peak resident memory (KiB) on fd 3 as it exits. */
const REPORT_MAX_RSS = `data:text/javascript,import{writeSync}from'node:fs';process.on('exit',()=>{try{writeSync(3,String(process.resourceUsage().maxRSS))}catch{}})`;

interface ProcessRun {
  ms: number;
  /** Peak resident memory of the process, bytes; null if it did not say. */
  maxRss: number | null;
  capped: boolean;
}

export const ipfsAdd: Benchmark = {
  name: 'ipfs-add',
  async run(): Promise<BenchmarkResult> {
    const cli = join(projectRoot, 'bin', 'task-mgmt.js');
    if (!existsSync(join(projectRoot, 'dist', 'src', 'main.js'))) {
      throw new Error('the app is not built: run `npm run build` first (`npm run bench` does)');
    }
    const rows: Record<string, Cell>[] = [];
    const ratios: BenchmarkResult['ratios'] = [];
    const notes: string[] = [];
    const large = `${LARGE_FILE_MIB} MiB file`;
    const largeBytes = LARGE_FILE_MIB * MiB;

    await withTempDir('ipfs', async (dir) => {
      const largeFile = join(dir, 'large.bin');
      await writeRandomFile(largeFile, largeBytes);
      const emptyFile = join(dir, 'empty.bin');
      await writeFile(emptyFile, '');

      const addProcess = async (profile: string, path: string): Promise<ProcessRun> => {
        const dataDir = await mkdtemp(join(dir, 'data-'));
        try {
          return await timeProcess([cli, 'add', '-Q', `--profile=${profile}`, path], { DATA_DIR: dataDir });
        } finally {
          await rm(dataDir, { recursive: true, force: true });
        }
      };
      const sides: { name: string; measure: () => Promise<ProcessRun> }[] = [
        { name: 'baseline: sha256 (node process)', measure: () => timeProcess(['-e', SHA256_SCRIPT, largeFile], {}) },
        ...PROFILES.map((profile) => ({ name: `task-mgmt add --profile=${profile}`, measure: () => addProcess(profile, largeFile) })),
      ];
      // A warm-up of each side: the page cache holds the file and the compiled code for every round.
      for (const side of sides) await side.measure();
      const runs = sides.map(() => [] as ProcessRun[]);
      for (let round = 0; round < ROUNDS; round++) {
        for (let k = 0; k < sides.length; k++) {
          const index = (round + k) % sides.length;
          runs[index]!.push(await sides[index]!.measure());
        }
      }
      // What start-up alone holds: an add of an empty file, the floor for the memory of an add.
      const idle = await addProcess(PROFILES[0], emptyFile);

      const baselineRuns = runs[0]!;
      sides.forEach((side, index) => {
        const own = runs[index]!;
        const perRound = own.map((run, round) => ratio(perSecond(largeBytes, run.ms), perSecond(largeBytes, baselineRuns[round]!.ms)));
        const caseRatio = index === 0 ? 1 : median(perRound.filter((value): value is number => value !== null));
        const maxRss = Math.max(...own.map((run) => run.maxRss ?? 0));
        rows.push({
          case: side.name,
          input: large,
          seconds: median(own.map((run) => run.ms)) / 1000,
          rate: perSecond(largeBytes / 1e6, median(own.map((run) => run.ms))),
          files: null,
          rss: maxRss > 0 ? maxRss / MiB : null,
          growth: index > 0 && maxRss > 0 && idle.maxRss !== null ? (maxRss - idle.maxRss) / MiB : null,
          rounds: index === 0 ? '' : perRound.map((value) => (value === null ? '—' : value.toFixed(2))).join(' '),
          ratio: caseRatio,
        });
        if (index > 0) ratios.push({ case: `${side.name}, ${large}, whole process`, ratio: caseRatio });
        if (own.some((run) => run.capped)) notes.push(`${side.name} hit the ${CAP_MS / 1000} s cap and was killed.`);
      });
      notes.push(
        `Whole process: ${ROUNDS} rounds after a warm-up; s and MB/s are medians, ratio is the median of the rounds' ratios (listed). ` +
          `Peak RSS is the process's own (getrusage); growth is over an add of an empty file (${idle.maxRss === null ? '—' : (idle.maxRss / MiB).toFixed(0)} MiB).`,
      );

      // In process: many small files.
      const folder = join(dir, 'small-files');
      await mkdir(folder, { recursive: true });
      const folderBytes = await writeSmallFiles(folder, SMALL_FILES);
      const small = `${SMALL_FILES} small files`;
      const baseline = await bestOfTwo(() => inProcess(async () => hashFolder(folder)));
      const added = await inProcess((signal) => addPath(join(dir, 'store-small'), folder, signal));
      const baselineRate = perSecond(folderBytes / 1e6, baseline.ms);
      for (const [name, m] of [
        ['baseline: sha256 of each file (in process)', baseline],
        ['EmbeddedIpfsStore.addPath (in process)', added],
      ] as const) {
        const rate = perSecond(folderBytes / 1e6, m.ms);
        const caseRatio = m === baseline ? 1 : ratio(rate, baselineRate);
        rows.push({
          case: name,
          input: small,
          seconds: m.ms / 1000,
          rate,
          files: perSecond(SMALL_FILES, m.ms),
          rss: null,
          growth: m.rssGrowth / MiB,
          rounds: '',
          ratio: caseRatio,
        });
        if (m !== baseline) ratios.push({ case: `${name}, ${small}`, ratio: caseRatio });
        if (m.capped) notes.push(`${name} on ${small} hit the ${CAP_MS / 1000} s cap and was aborted.`);
      }
      notes.push('Small files: the baseline hashes each file with as many in flight as the store reads at once, and keeps the faster of two runs; growth is the process\'s resident memory during the step.');
    });
    notes.push('MB = 10^6 bytes. Inputs sit in the page cache, so the ratios compare the work done, not the disk\'s read speed.');

    return {
      name: this.name,
      title: 'IPFS add (embedded store) vs streaming sha256 of the same bytes',
      columns: [
        { key: 'case', header: 'case', align: 'left' },
        { key: 'input', header: 'input', align: 'left' },
        { key: 'seconds', header: 's', digits: 2 },
        { key: 'rate', header: 'MB/s', digits: 1 },
        { key: 'files', header: 'files/s' },
        { key: 'rss', header: 'peak RSS MiB', digits: 0 },
        { key: 'growth', header: 'RSS growth MiB', digits: 0 },
        { key: 'rounds', header: 'ratio per round', align: 'left' },
        { key: 'ratio', header: 'ratio vs baseline', digits: 3 },
      ],
      rows,
      ratios,
      notes,
    };
  },
};

/** Runs `node <args>` to its end: wall time from spawn to exit, and the peak RSS it reported. */
function timeProcess(args: string[], env: Record<string, string>): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const child = spawn(process.execPath, [`--import=${REPORT_MAX_RSS}`, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let rss = '';
    child.stderr!.on('data', (data: Buffer) => (stderr += data.toString()));
    child.stdio[3]!.on('data', (data: Buffer) => (rss += data.toString()));
    let capped = false;
    const cap = setTimeout(() => {
      capped = true;
      child.kill('SIGKILL');
    }, CAP_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(cap);
      const ms = performance.now() - startedAt;
      if (code !== 0 && !capped) return reject(new Error(`node ${args.slice(0, 3).join(' ')} exited with ${code}: ${stderr.trim()}`));
      const kib = Number.parseInt(rss, 10);
      resolve({ ms, maxRss: Number.isFinite(kib) ? kib * 1024 : null, capped });
    });
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

interface InProcess {
  ms: number;
  rssGrowth: number;
  capped: boolean;
}

async function inProcess(body: (signal: AbortSignal) => Promise<unknown>): Promise<InProcess> {
  const signal = AbortSignal.timeout(CAP_MS);
  const startedAt = performance.now();
  let capped = false;
  const { rssBefore, rssPeak } = await trackRss(async () => {
    try {
      await body(signal);
    } catch (error) {
      if (!signal.aborted) throw error;
      capped = true;
    }
  });
  return { ms: performance.now() - startedAt, rssGrowth: rssPeak - rssBefore, capped };
}

/** The faster of two runs: the floor should not carry a cold start or a stray pause. */
async function bestOfTwo(measure: () => Promise<InProcess>): Promise<InProcess> {
  const first = await measure();
  const second = await measure();
  return second.ms < first.ms ? second : first;
}

async function addPath(dataDir: string, path: string, signal: AbortSignal): Promise<string> {
  const store = new EmbeddedIpfsStore({ dataDir });
  try {
    return (await store.addPath(path, { signal })).cid;
  } finally {
    await store.close();
  }
}

async function hashFile(path: string, highWaterMark: number): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark }), hash);
  return hash.digest('hex');
}

/**
 * Every file of the folder hashed on its own, as content addressing must, with as many files in
 * flight as EmbeddedIpfsStore reads at once, so the floor gets the same parallel reads. A small
 * read buffer: a 1 MiB one per 8 KiB file only measures the allocator.
 */
async function hashFolder(folder: string): Promise<string[]> {
  const names = (await readdir(folder)).sort();
  const digests: string[] = [];
  let next = 0;
  const reader = async () => {
    for (let name = names[next++]; name !== undefined; name = names[next++]) {
      digests.push(await hashFile(join(folder, name), 64 * 1024));
    }
  };
  await Promise.all(Array.from({ length: FILES_IN_FLIGHT }, reader));
  return digests;
}

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  async function* chunks() {
    for (let left = bytes; left > 0; left -= MiB) yield randomBytes(Math.min(MiB, left));
  }
  await pipeline(Readable.from(chunks()), createWriteStream(path));
}

/** Files of 1 byte to 8 KiB; returns their total size. */
async function writeSmallFiles(folder: string, count: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < count; i += 1) {
    const size = randomInt(1, SMALL_FILE_MAX_BYTES + 1);
    total += size;
    await writeFile(join(folder, `file-${String(i).padStart(5, '0')}.bin`), randomBytes(size));
  }
  return total;
}
