/**
 * The server half of bench/log-serving.ts, in a process of its own so that its peak memory is its
 * own: the JSON API on the run store in `dir`, and for the baseline the same log as a plain file
 * piped to the response (`GET /file`). Prints its port once listening; on SIGTERM prints what it
 * measured (event-loop delay, peak RSS) as one JSON line and exits.
 *
 * node --import tsx bench/log-serving-server.ts <dir> <service token>
 */
import { createReadStream } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { MemoryRepoHost } from '../src/adapters/local/memory-repo-host.js';
import { SqliteRunStore } from '../src/adapters/store/sqlite-run-store.js';
import { createApiHandler } from '../src/adapters/http/api-handler.js';
import { ReadAccess } from '../src/core/run-service/run-service.js';

const [dir, token] = process.argv.slice(2);
if (!dir || !token) throw new Error('usage: log-serving-server.ts <dir> <service token>');
const store = await SqliteRunStore.open(join(dir, 'task-mgmt.sqlite'));
const unused = async (): Promise<never> => {
  throw new Error('not used by the benchmark');
};
const api = createApiHandler({
  store,
  tokens: [token],
  runs: { create: unused, cancel: unused, pin: unused },
  reads: new ReadAccess({ hostFor: async () => new MemoryRepoHost(), now: () => new Date() }),
  log: pino({ level: 'silent' }),
});
const delay = monitorEventLoopDelay({ resolution: 5 });
const server = createServer((req, res) => {
  if (req.url === '/file') {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    void pipeline(createReadStream(join(dir, 'log.txt')), res).catch(() => undefined);
    return;
  }
  void api(req, res).then((handled) => {
    if (!handled) res.writeHead(404).end();
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
delay.enable();
console.log(JSON.stringify({ port: (server.address() as AddressInfo).port, idleRssMiB: process.memoryUsage.rss() / 1024 / 1024 }));
process.once('SIGTERM', () => {
  delay.disable();
  const ms = (ns: number) => ns / 1e6;
  console.log(JSON.stringify({ maxDelayMs: ms(delay.max), p99DelayMs: ms(delay.percentile(99)), peakRssMiB: process.resourceUsage().maxRSS / 1024 }));
  server.close();
  void store.close().finally(() => process.exit(0));
});
