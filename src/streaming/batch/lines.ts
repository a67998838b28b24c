/**
 * Reads a text file line by line with the byte offset of every line, from any byte position:
 * what checkpoints and chunk boundaries are made of. Memory is one read buffer and one line.
 */
import { createReadStream } from 'node:fs';

export interface Line {
  text: string;
  /** Byte offset of the line's first byte. */
  start: number;
  /** Byte offset just past the line's terminator. */
  end: number;
}

/** Lines starting at byte `start` (a line boundary) and before byte `end`; empty lines are skipped. */
export async function* readLines(file: string, start = 0, end = Infinity): AsyncGenerator<Line> {
  const stream = createReadStream(file, { start, ...(Number.isFinite(end) ? { end: end - 1 } : {}), highWaterMark: 1 << 20 });
  let pending: Buffer = Buffer.alloc(0);
  let offset = start;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let data = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    let from = 0;
    for (;;) {
      const nl = data.indexOf(10, from);
      if (nl < 0) break;
      const lineEnd = nl > from && data[nl - 1] === 13 ? nl - 1 : nl;
      if (lineEnd > from) yield { text: data.toString('utf8', from, lineEnd), start: offset + from, end: offset + nl + 1 };
      from = nl + 1;
    }
    offset += from;
    pending = data.subarray(from);
    data = pending;
  }
  if (pending.length > 0) {
    const text = pending.toString('utf8').replace(/\r$/, '');
    if (text.length > 0) yield { text, start: offset, end: offset + pending.length };
  }
}
