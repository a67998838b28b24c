/**
 * Checks a request against the served version's signature before it is queued: names,
 * datatypes, ranks and fixed dimensions. Every problem is reported in the message.
 */
import { InvalidInputError } from '../core/errors.js';
import type { InferenceRequest, TensorMetadata } from '../core/types.js';

export function checkRequest(model: string, inputs: readonly TensorMetadata[], outputs: readonly TensorMetadata[], request: InferenceRequest): void {
  // Runs on every request: plain loops, and no collection built unless something is wrong.
  let problems: string[] | undefined;
  const given = request.inputs;
  const seen = duplicates(given.length);
  for (let i = 0; i < given.length; i++) {
    const t = given[i]!;
    if (seen(given, i)) {
      (problems ??= []).push(`input '${t.name}' is given twice`);
      continue;
    }
    const at = indexOfName(inputs, t.name);
    if (at < 0) {
      (problems ??= []).push(`unknown input '${t.name}' (model '${model}' takes ${inputs.map((m) => `'${m.name}'`).join(', ')})`);
      continue;
    }
    const meta = inputs[at]!;
    if (meta.datatype !== t.datatype) (problems ??= []).push(`input '${t.name}' must be ${meta.datatype}, got ${t.datatype}`);
    if (meta.shape.length !== t.shape.length) {
      (problems ??= []).push(`input '${t.name}' must have shape [${meta.shape.join(', ')}] (rank ${meta.shape.length}), got [${t.shape.join(', ')}]`);
      continue;
    }
    for (let d = 0; d < meta.shape.length; d++) {
      const want = meta.shape[d]!;
      if (want >= 0 && want !== t.shape[d]) {
        (problems ??= []).push(`input '${t.name}' must have shape [${meta.shape.join(', ')}], got [${t.shape.join(', ')}] (dimension ${d} is ${t.shape[d]}, expected ${want})`);
        break;
      }
    }
  }
  for (const m of inputs) if (indexOfName(given, m.name) < 0) (problems ??= []).push(`missing input '${m.name}' (${m.datatype} [${m.shape.join(', ')}])`);
  const requested = request.outputs;
  if (requested !== undefined) {
    const asked = duplicates(requested.length);
    for (let i = 0; i < requested.length; i++) {
      const o = requested[i]!;
      if (asked(requested, i)) {
        (problems ??= []).push(`output '${o.name}' is requested twice`);
        continue;
      }
      if (indexOfName(outputs, o.name) < 0) {
        (problems ??= []).push(`unknown output '${o.name}' requested (model '${model}' has ${outputs.map((m) => `'${m.name}'`).join(', ')})`);
      }
    }
  }
  if (problems !== undefined) throw new InvalidInputError(listProblems(problems));
}

/**
 * Whether the i-th item's name came earlier, asked for i = 0, 1, 2...: a scan of the few items
 * a request usually has, a set past a handful so that a long list stays linear.
 */
function duplicates(count: number): (items: ReadonlyArray<{ name: string }>, i: number) => boolean {
  if (count <= 8) return scanBefore;
  const names = new Set<string>();
  return (items, i) => {
    const name = items[i]!.name;
    if (names.has(name)) return true;
    names.add(name);
    return false;
  };
}

function scanBefore(items: ReadonlyArray<{ name: string }>, i: number): boolean {
  return indexOfName(items, items[i]!.name) < i;
}

/** Position of the first item called `name`, or -1. */
function indexOfName(items: ReadonlyArray<{ name: string }>, name: string): number {
  for (let i = 0; i < items.length; i++) if (items[i]!.name === name) return i;
  return -1;
}

/** Checks a config's declared signature against the one read from the artifact. */
export function checkDeclared(kind: 'input' | 'output', declared: readonly TensorMetadata[] | undefined, actual: readonly TensorMetadata[]): string[] {
  if (!declared) return [];
  const problems: string[] = [];
  for (const d of declared) {
    const a = actual.find((x) => x.name === d.name);
    if (!a) {
      problems.push(`config declares ${kind} '${d.name}', which the model does not have (it has ${actual.map((x) => `'${x.name}'`).join(', ')})`);
      continue;
    }
    if (a.datatype !== d.datatype) problems.push(`config declares ${kind} '${d.name}' as ${d.datatype} but the model has ${a.datatype}`);
    const sameShape = a.shape.length === d.shape.length && a.shape.every((dim, i) => dim === -1 || d.shape[i] === -1 || dim === d.shape[i]);
    if (!sameShape) problems.push(`config declares ${kind} '${d.name}' with shape [${d.shape.join(', ')}] but the model has [${a.shape.join(', ')}]`);
  }
  if (kind === 'input') {
    for (const a of actual) if (!declared.some((d) => d.name === a.name)) problems.push(`the model's input '${a.name}' is missing from the config`);
  }
  return problems;
}

/** The first few problems and how many more, so that an error stays readable and bounded. */
export function listProblems(problems: readonly string[], shown = 5): string {
  const head = problems.slice(0, shown).join('; ');
  return problems.length > shown ? `${head}; and ${problems.length - shown} more` : head;
}
