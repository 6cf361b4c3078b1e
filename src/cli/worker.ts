/** `task-mgmt worker`: takes runs from the shared queue; for scale-out on other machines. */
import type { Config } from '../config.js';
import { createGithubClient, createLogger, openServices, queueKind, startWorker } from '../app.js';

export async function worker(config: Config): Promise<number> {
  const log = createLogger(config);
  const { octokitFor } = createGithubClient(config, log);
  const services = await openServices(config, log);
  const concurrency = Math.max(1, config.WORKERS);
  await startWorker(config, services, octokitFor, log, concurrency);
  log.info({ concurrency, queue: queueKind(config) }, 'worker is taking runs');
  return new Promise<number>((resolve) => {
    const stop = async (signal: string) => {
      log.info({ signal }, 'worker stopping');
      await services.close();
      resolve(0);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });
}
