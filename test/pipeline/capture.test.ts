/** The capture policy with a fake `next`: what it hands over, when, and what it never does. */
import { describe, expect, it } from 'vitest';
import type { InferenceRequest, InferenceResponse, Tensor } from '../../src/core/types.js';
import type { ModelVersion } from '../../src/models/model-version.js';
import { CapturePolicy, type CaptureDropReason, type CaptureTarget } from '../../src/pipeline/policies/capture.js';
import type { PipelineContext } from '../../src/pipeline/types.js';

class FakeTarget implements CaptureTarget {
  readonly input = 'features';
  readonly width = 3;
  observed: Array<{ input: number[]; outputs: readonly Tensor[] }> = [];
  drops: CaptureDropReason[] = [];
  failWith: Error | undefined;
  constructor(readonly sampleRate = 1) {}
  observe(input: Tensor, outputs: readonly Tensor[]): void {
    if (this.failWith) throw this.failWith;
    this.observed.push({ input: Array.from(input.data as Float32Array), outputs });
  }
  dropped(reason: CaptureDropReason): void {
    this.drops.push(reason);
  }
}

const version = { name: 'm', version: '1' } as ModelVersion;
const ctx = (): PipelineContext => ({ requestId: 'r', served: version }) as PipelineContext;
const request = (values: number[]): InferenceRequest => ({ inputs: [{ name: 'features', datatype: 'FP32', shape: [values.length / 3, 3], data: Float32Array.from(values) }] });
const response: InferenceResponse = { model_name: 'm', model_version: '1', outputs: [{ name: 'label', datatype: 'INT64', shape: [1], data: BigInt64Array.from([1n]) }] };
const turn = () => new Promise((r) => setImmediate(r));

describe('CapturePolicy', () => {
  it('hands inputs and outputs over after the answer, on a later turn, with a copy of the input', async () => {
    const target = new FakeTarget();
    const policy = new CapturePolicy({ targetFor: () => target });
    const req = request([1, 2, 3]);
    const answer = await policy.infer(ctx(), req, async (_c, r) => {
      // the hand-off to a worker may move the request's buffer
      structuredClone(r.inputs[0]!.data, { transfer: [(r.inputs[0]!.data as Float32Array).buffer] });
      return response;
    });
    expect(answer).toBe(response);
    expect(target.observed).toEqual([]);
    expect(policy.pending).toBe(1);
    await turn();
    expect(target.observed).toEqual([{ input: [1, 2, 3], outputs: response.outputs }]);
    expect(policy.pending).toBe(0);
  });

  it('a failed request is not captured and frees its place', async () => {
    const target = new FakeTarget();
    const policy = new CapturePolicy({ targetFor: () => target });
    await expect(policy.infer(ctx(), request([1, 2, 3]), () => Promise.reject(new Error('model failed')))).rejects.toThrow('model failed');
    await turn();
    expect(target.observed).toEqual([]);
    expect(policy.pending).toBe(0);
  });

  it('when the hand-off is full it drops and counts, and the request still runs', async () => {
    const target = new FakeTarget();
    const policy = new CapturePolicy({ targetFor: () => target }, { maxPending: 2 });
    let ran = 0;
    const next = async () => {
      ran++;
      return response;
    };
    await Promise.all([1, 2, 3, 4].map(() => policy.infer(ctx(), request([1, 2, 3]), next)));
    expect(ran).toBe(4);
    expect(target.drops).toEqual(['queue_full', 'queue_full']);
    await turn();
    expect(target.observed).toHaveLength(2);
  });

  it('a target that throws, or inputs it cannot read, never reach the caller', async () => {
    const target = new FakeTarget();
    target.failWith = new Error('window broke');
    const policy = new CapturePolicy({ targetFor: () => target });
    await expect(policy.infer(ctx(), request([1, 2, 3]), async () => response)).resolves.toBe(response);
    await turn();
    expect(target.drops).toEqual(['unreadable']);
    // 4 values are not whole rows of 3
    await expect(policy.infer(ctx(), request([1, 2, 3, 4]), async () => response)).resolves.toBe(response);
    expect(target.drops).toEqual(['unreadable', 'unreadable']);
    const throwing = new CapturePolicy({
      targetFor: () => {
        throw new Error('lookup broke');
      },
    });
    await expect(throwing.infer(ctx(), request([1, 2, 3]), async () => response)).resolves.toBe(response);
  });

  it('passes straight through for versions without a target, and samples at the target rate', async () => {
    const none = new CapturePolicy({ targetFor: () => undefined });
    await expect(none.infer(ctx(), request([1, 2, 3]), async () => response)).resolves.toBe(response);
    expect(none.pending).toBe(0);
    const target = new FakeTarget(0.25);
    let i = 0;
    const draws = [0.1, 0.3, 0.6, 0.9, 0.2, 0.5, 0.7, 0.24];
    const policy = new CapturePolicy({ targetFor: () => target }, { random: () => draws[i++ % draws.length]! });
    for (let k = 0; k < draws.length; k++) await policy.infer(ctx(), request([k, k, k]), async () => response);
    await turn();
    expect(target.observed.map((o) => o.input[0])).toEqual([0, 4, 7]);
  });

  it('works through a slow model without holding the answer back', async () => {
    const target = new FakeTarget();
    const policy = new CapturePolicy({ targetFor: () => target }, { sliceMs: 0 });
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, k) => policy.infer(ctx(), request([k, 0, 0]), () => new Promise<InferenceResponse>((r) => setTimeout(() => r(response), k % 5)))),
    );
    expect(answers.every((a) => a === response)).toBe(true);
    for (let k = 0; k < 60 && target.observed.length < 50; k++) await turn();
    expect(target.observed.map((o) => o.input[0]).sort((a, b) => a! - b!)).toEqual(Array.from({ length: 50 }, (_, k) => k));
  });
});
