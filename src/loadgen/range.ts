/**
 * Parsing of load ranges such as `1:64:x2` (geometric), `100:1000:100` (linear), `1,16,64` (list)
 * or `8` (single value).
 */

export class RangeSpecError extends Error {}

function num(text: string, what: string, integer: boolean): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new RangeSpecError(`${what}: '${text}' is not a positive ${integer ? 'integer' : 'number'}`);
  }
  return v;
}

/** Guards against ranges that would run for days by mistake. */
const MAX_STEPS = 1000;

export function parseRange(spec: string, opts: { integer: boolean; what: string }): number[] {
  const { integer, what } = opts;
  const s = spec.trim();
  if (s.includes(',')) {
    return s.split(',').map((p) => num(p.trim(), what, integer));
  }
  const parts = s.split(':');
  if (parts.length === 1) return [num(parts[0]!, what, integer)];
  if (parts.length > 3) throw new RangeSpecError(`${what}: '${spec}' is not start:end[:step]`);
  const start = num(parts[0]!, what, integer);
  const end = num(parts[1]!, what, integer);
  if (end < start) throw new RangeSpecError(`${what}: end ${end} is below start ${start}`);
  const stepText = (parts[2] ?? '1').trim();
  const out: number[] = [];
  if (/^[x*]/i.test(stepText)) {
    const factor = num(stepText.slice(1), what, false);
    if (factor <= 1) throw new RangeSpecError(`${what}: a geometric step must be above 1`);
    for (let v = start; v <= end * (1 + 1e-9); v *= factor) {
      out.push(integer ? Math.round(v) : Number(v.toPrecision(12)));
      if (out.length > MAX_STEPS) throw new RangeSpecError(`${what}: more than ${MAX_STEPS} steps`);
    }
  } else {
    const step = num(stepText, what, integer);
    for (let i = 0; ; i++) {
      const v = start + i * step;
      if (v > end * (1 + 1e-9)) break;
      out.push(integer ? Math.round(v) : Number(v.toPrecision(12)));
      if (out.length > MAX_STEPS) throw new RangeSpecError(`${what}: more than ${MAX_STEPS} steps`);
    }
  }
  // Geometric steps may round to the same integer (1:4:x1.2): keep each value once.
  return [...new Set(out)];
}
