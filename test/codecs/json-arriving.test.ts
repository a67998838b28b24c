// Decoding a JSON infer request while its body arrives: the reader keeps behind the bytes that
// have arrived (the rest read as 0, as in the shared memory the event loop fills), wherever a
// chunk ends, and gives the same tensors as reading the whole body; what it cannot read that
// way it leaves to the general decoder. Then the same through a real decoder thread.
import { describe, expect, it } from 'vitest';
import type { InferenceRequest } from '../../src/core/types.js';
import { ArrivingBody, JsonDecodePool } from '../../src/codecs/json-decode-pool.js';
import { decodeJsonInferRequest, readInferRequest, type Arrival } from '../../src/codecs/json-request.js';

/** The body as it stands after `first` bytes came; each wait then delivers `chunk` bytes at a time (0: exactly what is asked). */
function arriving(full: Buffer, first: number, chunk = 0): { body: Buffer; arrival: Arrival & { waits: number } } {
  const body = Buffer.alloc(full.length);
  full.copy(body, 0, 0, first);
  let arrived = first;
  const arrival = {
    waits: 0,
    waitFor(end: number): number {
      const target = Math.min(end, full.length);
      if (arrived >= target) return arrived;
      this.waits++;
      const next = chunk === 0 ? target : Math.min(full.length, arrived + Math.ceil((target - arrived) / chunk) * chunk);
      full.copy(body, arrived, arrived, next);
      arrived = next;
      return arrived;
    },
  };
  return { body, arrival };
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not true within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const bits = (r: InferenceRequest) => r.inputs.map((t) => [t.name, t.datatype, t.shape, Buffer.from((t.data as Float32Array).buffer).toString('base64')]);

/** A request with `count` FP32 values of full float32 precision (17 significant digits as JSON). */
function floatBody(count: number, extra = ''): { text: string; values: Float32Array } {
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = Math.fround(Math.sin(i * 1.37) * 2.5);
  return { text: `{"id":"a","inputs":[{"name":"x","datatype":"FP32","shape":[1,${count}],"data":[${Array.from(values).join(',')}]}${extra}],"outputs":[{"name":"y"}]}`, values };
}

describe('reading a body while it arrives', () => {
  it('gives the tensors of the whole body when the arrived bytes end at any byte of a number', () => {
    // Past the 16 KB asked for first, so that the reader meets the end of what has arrived.
    const { text, values } = floatBody(3000);
    const full = Buffer.from(text);
    const expected = bits(decodeJsonInferRequest(full));
    // Every split position across a few numbers in the middle of the data (and their commas).
    const middle = text.indexOf(',', 40_000);
    for (let first = middle - 45; first <= middle + 45; first++) {
      const { body, arrival } = arriving(full, first);
      const request = readInferRequest(body, arrival);
      expect(request, `first ${first} bytes`).toBeDefined();
      expect(bits(request!)).toEqual(expected);
      expect(arrival.waits).toBeGreaterThan(0);
      expect(Array.from(request!.inputs[0]!.data as Float32Array)).toEqual(Array.from(values));
    }
  });

  it.each([1, 3, 17, 100, 4096, 65536])('gives the same tensors when the body comes %i bytes at a time', (chunk) => {
    const { text } = floatBody(5000, `,{"name":"ids","datatype":"INT64","shape":[3],"data":[1,-2,9007199254740993]},{"name":"n","datatype":"INT32","shape":[2,2],"data":[[1,2],[3,4]]}`);
    const full = Buffer.from(text);
    const { body, arrival } = arriving(full, 0, chunk);
    const request = readInferRequest(body, arrival);
    expect(request).toBeDefined();
    const whole = decodeJsonInferRequest(full);
    expect(request!.inputs.map((t) => [t.name, Array.from(t.data as ArrayLike<unknown>).map(String)])).toEqual(whole.inputs.map((t) => [t.name, Array.from(t.data as ArrayLike<unknown>).map(String)]));
    expect(request!.id).toBe('a');
    expect(request!.outputs).toEqual([{ name: 'y' }]);
  });

  it('reads nested data while it arrives', () => {
    const rows = Array.from({ length: 40 }, (_, r) => Array.from({ length: 100 }, (_, c) => Math.fround(Math.cos(r * 100 + c))));
    const full = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [40, 100], data: rows }] }));
    const { body, arrival } = arriving(full, 0, 333);
    const request = readInferRequest(body, arrival);
    expect(request).toBeDefined();
    expect(Array.from(request!.inputs[0]!.data as Float32Array)).toEqual(rows.flat());
  });

  it('leaves a body malformed in the middle of its data to the general decoder', () => {
    const { text } = floatBody(3000);
    const at = text.indexOf(',', 30_000);
    const full = Buffer.from(`${text.slice(0, at)},,${text.slice(at + 1)}`);
    const { body, arrival } = arriving(full, 0, 1000);
    expect(readInferRequest(body, arrival)).toBeUndefined();
    expect(() => decodeJsonInferRequest(full)).toThrow(/not valid JSON/);
  });

  it('gives up when the arrival says the rest will not come', () => {
    const { text } = floatBody(3000);
    const full = Buffer.from(text);
    const body = Buffer.alloc(full.length);
    full.copy(body, 0, 0, 20_000);
    const refusing: Arrival = {
      waitFor(end) {
        if (end <= 20_000) return 20_000;
        throw new Error('stalled');
      },
    };
    expect(readInferRequest(body, refusing)).toBeUndefined();
  });
});

describe('the decoder thread reading a body as it arrives', () => {
  const { text, values } = floatBody(30_000);
  const full = Buffer.from(text);

  async function send(pool: JsonDecodePool, pieces: number[], pauseMs: number): Promise<InferenceRequest> {
    const body = new ArrivingBody(full.length);
    const decoded = pool.decodeArriving(body);
    let at = 0;
    for (const end of [...pieces, full.length]) {
      body.write(full.subarray(at, end));
      at = end;
      await new Promise((r) => setTimeout(r, pauseMs));
    }
    body.end();
    return decoded;
  }

  it('decodes a body written in pieces split inside numbers, and one that stalls past the wait limit', async () => {
    const pool = new JsonDecodePool({ threads: 1, maxQueue: 4 });
    try {
      const cuts = [7, 20_001, 200_003, 400_000].filter((c) => c < full.length);
      const quick = await send(pool, cuts, 2);
      expect(Array.from(quick.inputs[0]!.data as Float32Array)).toEqual(Array.from(values));
      // 250 ms between pieces: past the thread's wait limit, so the body is decoded whole once in.
      const slow = await send(pool, cuts, 250);
      expect(Array.from(slow.inputs[0]!.data as Float32Array)).toEqual(Array.from(values));
      expect(pool.canDecodeArriving).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('refuses a malformed body with the general decoder’s message, and frees the thread for an abandoned one', async () => {
    const pool = new JsonDecodePool({ threads: 1, maxQueue: 4 });
    try {
      const broken = Buffer.from(text.replace(/,/, ',]'));
      const body = new ArrivingBody(broken.length);
      const decoded = pool.decodeArriving(body);
      body.write(broken.subarray(0, 50_000));
      body.write(broken.subarray(50_000));
      body.end();
      await expect(decoded).rejects.toThrow(/not valid JSON/);

      const abandoned = new ArrivingBody(full.length);
      const gone = pool.decodeArriving(abandoned);
      abandoned.write(full.subarray(0, 30_000));
      abandoned.abandon(new Error('the client went away'));
      await expect(gone).rejects.toThrow(/the client went away/);
      // The thread is free again.
      const again = await send(pool, [100_000], 1);
      expect((again.inputs[0]!.data as Float32Array).length).toBe(values.length);
    } finally {
      await pool.close();
    }
  });

  it('reuses the memory of a finished body for the next one, with none of its bytes left', async () => {
    const pool = new JsonDecodePool({ threads: 1, maxQueue: 4 });
    try {
      const first = pool.arrivingBody(full.length);
      const firstDecoded = pool.decodeArriving(first);
      first.write(full);
      first.end();
      await firstDecoded;
      await new Promise((r) => setImmediate(r));
      expect(first.bytes.every((b) => b === 0)).toBe(true);
      // A shorter body of other numbers, coming in pieces: the reader runs into the end of what
      // has arrived, where the first body's bytes would be were they left.
      const other = floatBody(25_000);
      const next = Buffer.from(other.text.replace('"a"', '"b"'));
      const second = pool.arrivingBody(next.length);
      expect(second.bytes.buffer).toBe(first.bytes.buffer);
      const decoded = pool.decodeArriving(second);
      for (let at = 0; at < next.length; at += 50_000) {
        second.write(next.subarray(at, Math.min(next.length, at + 50_000)));
        await new Promise((r) => setTimeout(r, 2));
      }
      second.end();
      const request = await decoded;
      expect(request.id).toBe('b');
      expect(Array.from(request.inputs[0]!.data as Float32Array)).toEqual(Array.from(other.values));
    } finally {
      await pool.close();
    }
  });

  it('bounds the bodies held while they arrive, even once stalled ones have freed the thread', async () => {
    const pool = new JsonDecodePool({ threads: 1, maxQueue: 4 });
    try {
      expect(pool.canDecodeArriving).toBe(true);
      const first = new ArrivingBody(1_000_000);
      const firstDecoded = pool.decodeArriving(first);
      // The thread reads behind the first body: no second one while it does.
      expect(pool.canDecodeArriving).toBe(false);
      first.write(Buffer.from('{"inputs":['));
      // Nothing more comes: past the wait limit the thread lets go of it (the thread's start included).
      await until(() => pool.canDecodeArriving, 20_000);
      const second = new ArrivingBody(1_000_000);
      const secondDecoded = pool.decodeArriving(second);
      // Two bodies (twice the threads) hold their memory while their clients stall: the thread
      // lets go of the second too, yet no third may start.
      await new Promise((r) => setTimeout(r, 1000));
      expect(pool.canDecodeArriving).toBe(false);
      first.abandon(new Error('gone'));
      second.abandon(new Error('gone'));
      await expect(firstDecoded).rejects.toThrow(/gone/);
      await expect(secondDecoded).rejects.toThrow(/gone/);
      expect(pool.canDecodeArriving).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('refuses a body that says it is shorter than it is', async () => {
    const body = new ArrivingBody(10);
    body.write(Buffer.from('{"inputs":[]}'));
    await expect(body.complete).rejects.toThrow(/longer than its Content-Length of 10 bytes/);
    const short = new ArrivingBody(100);
    short.write(Buffer.from('{"inputs":[]}'));
    short.end();
    await expect(short.complete).rejects.toThrow(/ended after 13 of its Content-Length of 100 bytes/);
  });
});
