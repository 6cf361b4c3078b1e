/**
 * DockerExecutor against the Executor contract on a real engine (scripts/docker-up.sh), FROM the
 * local busybox image. The suite's image is built once, under a tag of its own, before the first
 * case: every case's build then comes from the engine's cache, and removing a run's tag leaves
 * the suite's image in place. Behaviour only Docker has (host config, leftover containers of an
 * earlier attempt, Dockerfile refusals, symlinks in the context) is in
 * test/integration/docker-executor.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import Dockerode from 'dockerode';
import { describe } from 'vitest';
import { DockerExecutor } from '../../src/adapters/executor/docker-executor.js';
import { leftoversOf } from '../support/docker-leftovers.js';
import { requireServices } from '../support/services.js';
import { executorContract } from './executor.contract.js';

const dockerReady = await requireServices('docker');

describe.skipIf(!dockerReady)('Docker', { timeout: 30_000 }, () => {
  executorContract('DockerExecutor', async ({ contextDir, dockerfile }) => {
    const docker = new Dockerode();
    const tag = `task-mgmt-contract/cases:${randomUUID().slice(0, 8)}`;
    // The same context and options as the executor's own build, so its builds hit this cache.
    const stream = await docker.buildImage({ context: contextDir, src: await readdir(contextDir) }, { dockerfile, t: tag, version: '1', networkmode: 'none', pull: false, rm: true, forcerm: true });
    const events = await new Promise<{ error?: string }[]>((resolve, reject) => docker.modem.followProgress(stream, (error, output) => (error ? reject(error) : resolve(output as { error?: string }[]))));
    const failure = events.find((event) => event.error !== undefined);
    if (failure) throw new Error(`building the contract's image failed: ${failure.error}`);
    return {
      executor: new DockerExecutor({ docker }),
      leftoversOf: (runId) => leftoversOf(docker, runId),
      cleanup: async () => {
        await docker.getImage(tag).remove();
      },
    };
  });
});
