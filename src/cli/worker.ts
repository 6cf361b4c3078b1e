/** `task-mgmt worker`: takes runs from the shared queue; for scale-out on other machines. */
import type { Config } from '../config.js';
import { createGithubClient, createLogger, openServices, queueKind, startCollector, startWorker } from '../app.js';
import { WorkerStoppingError } from '../ports/errors.js';
import { onStopSignal, stopWithin } from './shutdown.js';

export async function worker(config: Config): Promise<number> {
  const log = createLogger(config);
  const { octokitFor } = createGithubClient(config, log);
  const services = await openServices(config, log);
  const concurrency = Math.max(1, config.WORKERS);
  const stopping = new AbortController();
  await startWorker(config, services, octokitFor, log, concurrency, stopping.signal);
  // Its own output folders go once nothing needs them; pins too when they live on a shared Kubo
  // (with the embedded store the app collects them, in the DATA_DIR its gateway serves).
  const collector = startCollector(config, services, log, { collectPins: config.IPFS_API_URL !== undefined });
  log.info({ concurrency, queue: queueKind(config) }, 'worker is taking runs');
  return new Promise<number>((resolve) => {
    onStopSignal((signal) => {
      log.info({ signal, graceMs: config.SHUTDOWN_GRACE }, 'worker stopping: taking no more runs');
      void stopWithin(
        {
          drain: () => services.queue.close(),
          handBack: () => stopping.abort(new WorkerStoppingError()),
          release: async () => {
            await collector.stop();
            await services.close();
          },
        },
        { graceMs: config.SHUTDOWN_GRACE, log },
      ).then((clean) => {
        log.info({ clean }, 'worker stopped');
        resolve(0);
      });
    });
  });
}
