/**
 * Build an image and run it in the sandbox, as the `container` and `procfile` task types both do:
 * the outputs of needed tasks mounted read-only at /in/<task>, the task's env and limits.
 */
import { BuildFailedError } from '../../src/ports/executor.js';
import type { TaskContext, TaskResult } from '../../src/ports/task-type.js';

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
    const image = result.imageId !== '' ? { image: { id: result.imageId, baseDigest: result.baseImageDigest } } : {};
    if (result.cancelled) return { state: 'cancelled', exitCode: null, error: 'the run was cancelled', ...image };
    if (result.timedOut) return { state: 'timed_out', exitCode: null, metadata: { imageId: result.imageId }, ...image };
    if (result.exitCode !== 0) return { state: 'failed', exitCode: result.exitCode, error: `the task exited with code ${result.exitCode}`, metadata: { imageId: result.imageId }, ...image };
    return { state: 'succeeded', exitCode: 0, metadata: { imageId: result.imageId }, ...image };
  } catch (error) {
    if (error instanceof BuildFailedError) return { state: 'failed', exitCode: null, error: `the image did not build: ${error.message}` };
    throw error;
  }
}
