/**
 * The compact form of a group of runs crossing to a model worker and back. Structured clone
 * writes and reads every object, array and string of a message one by one: for a group of
 * small runs that costs microseconds per run on each side, more than the runs' numbers. Here a
 * group's tensors become numbers in one Float64Array (name and datatype as indices, shape,
 * place in the data buffer), their data views of one buffer (see packTensors), and the strings
 * (names, request ids, failure messages) one list in which each name appears once.
 *
 * Only groups whose tensors are all numeric, all in that one buffer and without parameters take
 * this form; the others cross as plain objects, as before.
 */
import { DATATYPES, type Datatype, type NumericArray } from '../core/datatypes.js';
import type { Tensor } from '../core/types.js';
import type { RunTimings } from '../runtimes/types.js';

/** A group's runs or outcomes, compact: `layout` read with `strings` and `memory`. */
export interface PackedGroup {
  strings: string[];
  layout: Float64Array;
  memory: ArrayBuffer;
}

/** What a worker answers one run of a group with. */
export type PackedOutcome = { outputs: Tensor[]; timings: RunTimings } | { failed: string; inputCaused: boolean };

const DATATYPE_INDEX: ReadonlyMap<string, number> = new Map(DATATYPES.map((d, i) => [d, i]));

type ViewConstructor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => NumericArray;
const VIEWS: Partial<Record<Datatype, ViewConstructor>> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  BF16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
};

/** Whether every tensor is numeric data in `memory`, without parameters: the compact form holds it. */
export function fitsPacked(groups: readonly (readonly Tensor[])[], memory: ArrayBuffer | undefined): memory is ArrayBuffer {
  if (memory === undefined) return false;
  for (const tensors of groups) {
    for (const t of tensors) {
      if (t.parameters !== undefined || Array.isArray(t.data) || (t.data as NumericArray).buffer !== memory) return false;
    }
  }
  return true;
}

/** Writes numbers and indexed strings; sized by a first pass, so the layout is one allocation. */
class LayoutWriter {
  readonly strings: string[] = [];
  private readonly index = new Map<string, number>();
  layout: Float64Array = new Float64Array(0);
  private at = 0;

  allocate(size: number): void {
    this.layout = new Float64Array(size);
  }

  number(n: number): void {
    this.layout[this.at++] = n;
  }

  /** A string written once per group (names): its index in `strings`. */
  name(s: string): void {
    let i = this.index.get(s);
    if (i === undefined) {
      i = this.strings.push(s) - 1;
      this.index.set(s, i);
    }
    this.number(i);
  }

  /** A string of its own (a request id, a message). */
  text(s: string): void {
    this.number(this.strings.push(s) - 1);
  }

  tensors(tensors: readonly Tensor[]): void {
    this.number(tensors.length);
    for (const t of tensors) {
      const view = t.data as NumericArray;
      this.name(t.name);
      this.number(DATATYPE_INDEX.get(t.datatype)!);
      this.number(t.shape.length);
      for (const d of t.shape) this.number(d);
      this.number(view.byteOffset);
      this.number(view.length);
    }
  }
}

function tensorsSize(tensors: readonly Tensor[]): number {
  let size = 1;
  for (const t of tensors) size += 5 + t.shape.length;
  return size;
}

class LayoutReader {
  private at = 0;
  constructor(
    private readonly group: PackedGroup,
  ) {}

  number(): number {
    return this.group.layout[this.at++]!;
  }

  string(): string {
    return this.group.strings[this.number()]!;
  }

  tensors(): Tensor[] {
    const count = this.number();
    const tensors = new Array<Tensor>(count);
    for (let k = 0; k < count; k++) {
      const name = this.string();
      const datatype = DATATYPES[this.number()]!;
      const rank = this.number();
      const shape = new Array<number>(rank);
      for (let d = 0; d < rank; d++) shape[d] = this.number();
      const offset = this.number();
      const length = this.number();
      const View = VIEWS[datatype];
      if (View === undefined) throw new TypeError(`a packed tensor cannot hold ${datatype} data`);
      tensors[k] = { name, datatype, shape, data: new View(this.group.memory, offset, length) };
    }
    return tensors;
  }
}

/** The runs of a group (inputs, requested outputs, request ids), compact; their data must be in `memory` (fitsPacked). */
export function packRuns(runs: readonly { inputs: readonly Tensor[]; outputs: readonly string[]; requestIds: readonly string[] }[], memory: ArrayBuffer): PackedGroup {
  const w = new LayoutWriter();
  let size = 1;
  for (const run of runs) size += tensorsSize(run.inputs) + 2 + run.outputs.length + run.requestIds.length;
  w.allocate(size);
  w.number(runs.length);
  for (const run of runs) {
    w.tensors(run.inputs);
    w.number(run.outputs.length);
    for (const name of run.outputs) w.name(name);
    w.number(run.requestIds.length);
    for (const id of run.requestIds) w.text(id);
  }
  return { strings: w.strings, layout: w.layout, memory };
}

export function unpackRuns(group: PackedGroup): Array<{ inputs: Tensor[]; outputs: string[]; requestIds: string[] }> {
  const r = new LayoutReader(group);
  const runs = new Array<{ inputs: Tensor[]; outputs: string[]; requestIds: string[] }>(r.number());
  for (let i = 0; i < runs.length; i++) {
    const inputs = r.tensors();
    const outputs = new Array<string>(r.number());
    for (let k = 0; k < outputs.length; k++) outputs[k] = r.string();
    const requestIds = new Array<string>(r.number());
    for (let k = 0; k < requestIds.length; k++) requestIds[k] = r.string();
    runs[i] = { inputs, outputs, requestIds };
  }
  return runs;
}

/** A group's outcomes, compact; the outputs' data must be in `memory` (fitsPacked). */
export function packOutcomes(outcomes: readonly PackedOutcome[], memory: ArrayBuffer): PackedGroup {
  const w = new LayoutWriter();
  let size = 1;
  for (const o of outcomes) size += 'failed' in o ? 3 : 4 + tensorsSize(o.outputs);
  w.allocate(size);
  w.number(outcomes.length);
  for (const o of outcomes) {
    if ('failed' in o) {
      w.number(o.inputCaused ? 2 : 1);
      w.text(o.failed);
      w.number(0);
      continue;
    }
    w.number(0);
    w.number(o.timings.inputNs);
    w.number(o.timings.inferNs);
    w.number(o.timings.outputNs);
    w.tensors(o.outputs);
  }
  return { strings: w.strings, layout: w.layout, memory };
}

export function unpackOutcomes(group: PackedGroup): PackedOutcome[] {
  const r = new LayoutReader(group);
  const outcomes = new Array<PackedOutcome>(r.number());
  for (let i = 0; i < outcomes.length; i++) {
    const status = r.number();
    if (status !== 0) {
      outcomes[i] = { failed: r.string(), inputCaused: status === 2 };
      r.number();
      continue;
    }
    const timings: RunTimings = { inputNs: r.number(), inferNs: r.number(), outputNs: r.number() };
    outcomes[i] = { outputs: r.tensors(), timings };
  }
  return outcomes;
}
