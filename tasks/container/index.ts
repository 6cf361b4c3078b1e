/**
 * `container`: the repository's Dockerfile, built and run in the sandbox (DESIGN "Container
 * contract"). Outputs of needed tasks are mounted read-only at /in/<task>.
 */
import { isAbsolute, join, normalize, relative } from 'node:path';
import { z } from 'zod';
import { BuildFailedError } from '../../src/ports/executor.js';
import type { TaskContext, TaskResult, TaskType } from '../../src/ports/task-type.js';

const relativePath = z
  .string()
  .min(1)
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

/** Builds `dockerfile` in `contextDir` and runs it with the task's sandbox, inputs and env. */
export async function runImage(
  ctx: TaskContext,
  build: { contextDir: string; dockerfile: string; extraMounts?: { hostPath: string; containerPath: string }[] },
): Promise<TaskResult> {
  try {
    const result = await ctx.executor.execute({
      runId: ctx.runId,
      contextDir: build.contextDir,
      dockerfile: build.dockerfile,
      outDir: ctx.outDir,
      readOnlyMounts: [
        ...Object.entries(ctx.inputs).map(([name, input]) => ({ hostPath: input.dir, containerPath: `/in/${name}` })),
        ...(build.extraMounts ?? []),
      ],
      env: ctx.env,
      limits: ctx.limits,
      signal: ctx.signal,
      onLog: ctx.log,
      ...(ctx.beforeStart ? { beforeStart: ctx.beforeStart } : {}),
    });
    if (result.cancelled) return { state: 'cancelled', exitCode: null, error: 'the run was cancelled' };
    if (result.timedOut) return { state: 'timed_out', exitCode: null, metadata: { imageId: result.imageId } };
    if (result.exitCode !== 0) return { state: 'failed', exitCode: result.exitCode, error: `the task exited with code ${result.exitCode}`, metadata: { imageId: result.imageId } };
    return { state: 'succeeded', exitCode: 0, metadata: { imageId: result.imageId } };
  } catch (error) {
    if (error instanceof BuildFailedError) return { state: 'failed', exitCode: null, error: `the image did not build: ${error.message}` };
    throw error;
  }
}
