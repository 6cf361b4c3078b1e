/** `task-mgmt worker`: takes runs from the shared queue; for scale-out on other machines. */
import type { Config } from '../config.js';
import { createGithubClient, createLogger, openServices, queueKind, startCollector, startWorker } from '../app.js';
import { WorkerStoppingError } from '../ports/errors.js';
import { instrumentOctokit } from '../adapters/github/octokit.js';
import { startMetricsServer, type MetricsServer } from '../adapters/metrics/metrics-server.js';
import { onStopSignal, stopWithin } from './shutdown.js';

export async function worker(config: Config): Promise<number> {
  const log = createLogger(config);
  const { octokitFor } = createGithubClient(config, log);
  const services = await openServices(config, log, { role: 'worker' });
  // /metrics and /healthz on METRICS_PORT, for Prometheus and the orchestrator's probes.
  let metricsServer: MetricsServer | undefined;
  if (config.METRICS_PORT !== 0) {
    try {
      metricsServer = await startMetricsServer({
        port: config.METRICS_PORT,
        metrics: services.metrics,
        unhealthy: () => (services.queue.connected?.() === false ? `not connected to the queue (${queueKind(config)})` : null),
      });
    } catch (error) {
      await services.close();
      throw error;
    }
  }
  const concurrency = Math.max(1, config.WORKERS);
  const stopping = new AbortController();
  await startWorker(config, services, async (installationId) => instrumentOctokit(await octokitFor(installationId), services.metrics.github), log, concurrency, stopping.signal);
  // Its own output folders go once nothing needs them; pins too when they live on a shared Kubo
  // (with the embedded store the app collects them, in the DATA_DIR its gateway serves).
  const collector = startCollector(config, services, log, { collectPins: config.IPFS_API_URL !== undefined });
  log.info({ concurrency, queue: queueKind(config), ...(metricsServer ? { metricsPort: metricsServer.port } : {}) }, 'worker is taking runs');
  return new Promise<number>((resolve) => {
    onStopSignal((signal) => {
      log.info({ signal, graceMs: config.SHUTDOWN_GRACE }, 'worker stopping: taking no more runs');
      void stopWithin(
        {
          drain: () => services.queue.close(),
          handBack: () => stopping.abort(new WorkerStoppingError()),
          release: async () => {
            await metricsServer?.close();
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
