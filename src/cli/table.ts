/** Plain-text tables of the CLI: columns padded to their widest cell, two spaces apart. */

/** The header line, then a line a row (the last column unpadded). */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** As table(), but nothing at all when there are no rows. */
export function rowsTable(headers: string[], rows: string[][]): string {
  return rows.length === 0 ? '' : table(headers, rows);
}
