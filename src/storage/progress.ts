/**
 * A progress line for downloads on an interactive terminal: one line rewritten in place
 * (file, bytes so far, total, percentage, rate), at most five times a second, ended by a
 * newline when the file is complete. Nothing is printed when the stream is not a terminal:
 * the per-artifact log line carries the same facts.
 */
export function progressLine(stream: NodeJS.WriteStream = process.stderr): ((what: string, done: number, total: number | undefined) => void) | undefined {
  if (!stream.isTTY) return undefined;
  let current = '';
  let started = 0;
  let lastDraw = Number.NEGATIVE_INFINITY;
  const mb = (n: number) => (n / 1e6).toFixed(1);
  return (what, done, total) => {
    const now = performance.now();
    if (what !== current) {
      current = what;
      started = now;
      // The first update of a file is always drawn, however early in the process it comes.
      lastDraw = Number.NEGATIVE_INFINITY;
    }
    const finished = total !== undefined && done >= total;
    if (!finished && now - lastDraw < 200) return;
    lastDraw = now;
    const rate = done / 1e6 / Math.max((now - started) / 1000, 1e-3);
    const pct = total ? ` ${Math.floor((done / total) * 100)}%` : '';
    const line = `${what}: ${mb(done)}${total !== undefined ? `/${mb(total)}` : ''} MB${pct} ${rate.toFixed(1)} MB/s`;
    stream.write(`\r\x1b[2K${line}${finished ? '\n' : ''}`);
  };
}
