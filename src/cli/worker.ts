/** `task-mgmt worker`: takes runs from the shared queue; for scale-out on other machines. */
import type { Config } from '../config.js';
import { createGithubClient, createLogger, openServices, queueKind, startWorker } from '../app.js';
import { WorkerStoppingError } from '../ports/errors.js';
import { onStopSignal, stopWithin } from './shutdown.js';

export async function worker(config: Config): Promise<number> {
  const log = createLogger(config);
  const { octokitFor } = createGithubClient(config, log);
  const services = await openServices(config, log);
  const concurrency = Math.max(1, config.WORKERS);
  const stopping = new AbortController();
  await startWorker(config, services, octokitFor, log, concurrency, stopping.signal);
  log.info({ concurrency, queue: queueKind(config) }, 'worker is taking runs');
  return new Promise<number>((resolve) => {
    onStopSignal((signal) => {
      log.info({ signal, graceMs: config.SHUTDOWN_GRACE }, 'worker stopping: taking no more runs');
      void stopWithin(
        {
          drain: () => services.queue.close(),
          handBack: () => stopping.abort(new WorkerStoppingError()),
          release: () => services.close(),
        },
        { graceMs: config.SHUTDOWN_GRACE, log },
      ).then((clean) => {
        log.info({ clean }, 'worker stopped');
        resolve(0);
      });
    });
  });
}
