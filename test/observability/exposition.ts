/** A small reader of the Prometheus text format, for assertions on rendered metrics. */
export interface Line {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseExposition(text: string): Line[] {
  const lines: Line[] = [];
  for (const raw of text.split('\n')) {
    if (raw === '' || raw.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(raw);
    if (match === null) throw new Error(`not an exposition line: ${raw}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    const value = match[3] === '+Inf' ? Infinity : match[3] === '-Inf' ? -Infinity : Number(match[3]);
    lines.push({ name: match[1]!, labels, value });
  }
  return lines;
}

/** The value of the one series with this name and (at least) these labels; throws when there is not exactly one. */
export function valueOf(lines: Line[], name: string, labels: Record<string, string> = {}): number {
  const found = lines.filter((l) => l.name === name && Object.entries(labels).every(([k, v]) => l.labels[k] === v));
  if (found.length !== 1) throw new Error(`${found.length} series match ${name} ${JSON.stringify(labels)}`);
  return found[0]!.value;
}

export function seriesOf(lines: Line[], name: string, labels: Record<string, string> = {}): Line[] {
  return lines.filter((l) => l.name === name && Object.entries(labels).every(([k, v]) => l.labels[k] === v));
}
