/**
 * The unit helpers a task type may use: sizes and durations as manifests write them (`4g`, `6h`)
 * and their readable forms. Task types import only from src/ports/, so this re-exports them from
 * core rather than moving them: core's manifest schema and check-run text are their main users,
 * and core does not need to learn where ports keep things.
 */
export { durationSchema, formatDuration, formatSize, sizeSchema } from '../core/runs/units.js';
