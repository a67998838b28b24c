/** The load generator behind `inferd bench`, usable programmatically. */
export { runBench } from './runner.js';
export type { BenchOptions, BenchReport, StepResult, WindowResult, ProgressEvent, LoadMode, RawTarget } from './runner.js';
export { formatTable, toCsv, formatProgress } from './report.js';
export { parseRange } from './range.js';
export { parseShapeArg } from './inputs.js';
