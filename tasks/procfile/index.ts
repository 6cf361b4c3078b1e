/**
 * `procfile`: one process of the repository's Procfile, run in the sandbox in a base image that
 * is already on the Docker host, with the repository read-only at /workspace.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { TaskType } from '../../src/ports/task-type.js';
import { runImage } from '../shared/run-image.js';

export const procfileParams = z
  .object({
    procfile: z.string().max(1024).default('Procfile'),
    /** The process type (the name before the colon). */
    process: z.string().max(63).regex(/^[A-Za-z0-9_-]+$/, 'is not a Procfile process type'),
    /** Base image; it must already be on the Docker host. */
    image: z.string().max(255).default('busybox:latest'),
  })
  .strict();
export type ProcfileParams = z.infer<typeof procfileParams>;

export const procfile: TaskType<ProcfileParams> = {
  name: 'procfile',
  description: 'runs one process of the Procfile in a base image, with the repository read-only at /workspace',
  params: procfileParams,
  network: false,
  needsSource: true,
  startsContainer: true,
  async run(ctx, params) {
    const text = await readFile(join(ctx.sourceDir, params.procfile), 'utf8').catch(() => null);
    if (text === null) return { state: 'failed', error: `there is no ${params.procfile} at this commit` };
    const line = text.split(/\r?\n/).find((entry) => entry.trim().startsWith(`${params.process}:`));
    if (!line) return { state: 'failed', error: `${params.procfile} has no process \`${params.process}\`` };
    const command = line.slice(line.indexOf(':') + 1).trim();
    // A generated Dockerfile: the image as it is, the command from the Procfile, nothing copied in.
    const dockerfile = ['FROM ' + params.image, 'WORKDIR /workspace', `CMD ${JSON.stringify(['sh', '-c', command])}`, ''].join('\n');
    await writeFile(join(ctx.scratchDir, 'Dockerfile'), dockerfile);
    return runImage(ctx, { contextDir: ctx.scratchDir, dockerfile: 'Dockerfile', extraMounts: [{ hostPath: ctx.sourceDir, containerPath: '/workspace' }] });
  },
};
