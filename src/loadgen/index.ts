/** The load generator behind `inferd bench`, usable programmatically. */
export { runBench, httpModelMetadata, BenchError } from './runner.js';
export type { BenchOptions, BenchReport, StepResult, WindowResult, ProgressEvent, LoadMode, RawTarget } from './runner.js';
export { formatTable, toCsv, formatProgress } from './report.js';
export { parseRange, RangeSpecError } from './range.js';
export { parseCsv, inputsFromJson, inputsFromRows, buildInputs, parseShapeArg, resolveShape, InputDataError } from './inputs.js';
export { isStable, STABILITY_SPAN } from './stability.js';
export { LatencyHistogram } from './histogram.js';
export type { LatencySummary } from './histogram.js';
export { parseStats, statsDelta } from './stats.js';
export type { ServerSplit, InferenceStats } from './stats.js';
export type { ModelMetadata, TensorSpec, RequestInputs, RequestTensor, Protocol } from './types.js';
