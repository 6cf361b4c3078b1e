/** What a run left on the Docker engine: every executor test checks there is nothing. */
import type Dockerode from 'dockerode';
import { RUN_LABEL } from '../../src/adapters/executor/docker-executor.js';

/** The containers and images still labelled with the run's id, as readable lines. */
export async function leftoversOf(docker: Dockerode, runId: string): Promise<string[]> {
  const filters = { label: [`${RUN_LABEL}=${runId}`] };
  const [containers, images] = await Promise.all([docker.listContainers({ all: true, filters }), docker.listImages({ filters })]);
  return [...containers.map((container) => `container ${container.Id}`), ...images.map((image) => `image ${image.Id}`)];
}
