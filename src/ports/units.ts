/**
 * The unit helpers a task type may use: sizes and durations as manifests write them (`4g`, `6h`)
 * and their readable forms. Task types import only from src/ports/, so this re-exports them;
 * they stay in core because core's manifest schema and check-run text are built on them, and
 * ports hold contracts, not the logic behind them.
 */
export { durationSchema, formatDuration, formatSize, sizeSchema } from '../core/runs/units.js';
