/**
 * `container`: the repository's Dockerfile, built and run in the sandbox (README "The
 * sandbox"). Outputs of needed tasks are mounted read-only at /in/<task>.
 */
import { isAbsolute, join, normalize, relative } from 'node:path';
import { z } from 'zod';
import type { TaskType } from '../../src/ports/task-type.js';
import { runImage } from '../shared/run-image.js';

const relativePath = z
  .string()
  .min(1)
  .max(1024)
  .refine((path) => !isAbsolute(path) && !normalize(path).split(/[\\/]/).includes('..'), 'must be a path inside the repository');

export const containerParams = z
  .object({
    /** The Dockerfile, relative to the repository root. */
    dockerfile: relativePath.default('Dockerfile'),
    /** The build context, relative to the repository root. */
    context: relativePath.default('.'),
  })
  .strict();
export type ContainerParams = z.infer<typeof containerParams>;

export const container: TaskType<ContainerParams> = {
  name: 'container',
  description: "builds the repository's Dockerfile and runs it in the sandbox",
  params: containerParams,
  network: false,
  needsSource: true,
  startsContainer: true,
  run: async (ctx, params) => runImage(ctx, { contextDir: join(ctx.sourceDir, params.context), dockerfile: relative(params.context, params.dockerfile) || params.dockerfile }),
};
