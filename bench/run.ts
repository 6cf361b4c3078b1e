/**
 * `npm run bench`: runs each benchmark in turn, prints one table per benchmark and a summary of
 * the ratios, and writes every number to bench/results/latest.json.
 * `node --import tsx bench/run.ts store-ops ipfs-add` runs only the benchmarks named.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dashboardRuns } from './dashboard-runs.js';
import { ipfsAdd } from './ipfs-add.js';
import { logServing } from './log-serving.js';
import { queueThroughput } from './queue-throughput.js';
import { formatCell, formatTable, type Benchmark, type BenchmarkResult } from './report.js';
import { storeOps } from './store-ops.js';
import { webhookBurstBenchmark } from './webhook-burst.js';
import { webhookPath } from './webhook-path.js';

const benchmarks: Benchmark[] = [queueThroughput, ipfsAdd, storeOps, webhookPath, logServing, dashboardRuns, webhookBurstBenchmark];

const resultsFile = join(dirname(fileURLToPath(import.meta.url)), 'results', 'latest.json');

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((name) => !benchmarks.some((b) => b.name === name));
  if (unknown.length > 0) {
    throw new Error(`unknown benchmark ${unknown.join(', ')}; known: ${benchmarks.map((b) => b.name).join(', ')}`);
  }
  const selected = wanted.length === 0 ? benchmarks : benchmarks.filter((b) => wanted.includes(b.name));

  const startedAt = new Date();
  const results: BenchmarkResult[] = [];
  const failures: { name: string; error: string }[] = [];
  for (const benchmark of selected) {
    console.log(`\n== ${benchmark.name} ==`);
    const began = performance.now();
    try {
      const result = await benchmark.run();
      results.push(result);
      console.log(result.title);
      console.log(formatTable(result.columns, result.rows));
      for (const note of result.notes) console.log(`  · ${note}`);
    } catch (error) {
      // One broken benchmark should not hide the numbers of the others.
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      failures.push({ name: benchmark.name, error: message });
      console.error(`${benchmark.name} failed: ${message}`);
    }
    console.log(`  (${((performance.now() - began) / 1000).toFixed(1)} s)`);
  }

  console.log('\n== summary: throughput ÷ baseline throughput (1 = as fast as the baseline) ==');
  const summary = results.flatMap((result) => result.ratios.map((line) => ({ benchmark: result.name, case: line.case, ratio: line.ratio })));
  console.log(
    formatTable(
      [
        { key: 'benchmark', header: 'benchmark', align: 'left' },
        { key: 'case', header: 'case', align: 'left' },
        { key: 'ratio', header: 'ratio', digits: 3 },
        { key: 'slower', header: 'x slower' },
      ],
      summary.map((line) => ({
        ...line,
        slower: line.ratio === null || line.ratio === 0 ? null : `${formatCell(1 / line.ratio, 1)}x`,
      })),
    ),
  );
  for (const failure of failures) console.log(`FAILED: ${failure.name}`);

  await mkdir(dirname(resultsFile), { recursive: true });
  const report = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: { count: availableParallelism(), model: cpus()[0]?.model ?? 'unknown' },
    benchmarks: results,
    failures,
  };
  await writeFile(resultsFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nnumbers written to ${relative(process.cwd(), resultsFile)}`);
  if (failures.length > 0) process.exitCode = 1;
}

await main();
