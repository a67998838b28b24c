/** What the codec tests share: hand-written JSON request bodies, and the refusal they expect. */
import { expect } from 'vitest';
import { decodeInferRequest, parseJsonBody } from '../../src/codecs/json.js';
import { InvalidInputError } from '../../src/core/errors.js';
import type { Tensor } from '../../src/core/types.js';

/** A one-input request body written by hand: JSON.stringify cannot write these literals (integers beyond 2^53, say). */
export function literalBody(datatype: string, literals: string[], name = 'x'): string {
  return `{"inputs":[{"name":"${name}","datatype":"${datatype}","shape":[${literals.length}],"data":[${literals.join(',')}]}]}`;
}

/** The first input of a JSON request body, decoded as the REST door does. */
export function decodeJsonInput(text: string): Tensor {
  return decodeInferRequest(parseJsonBody(text)).inputs[0]!;
}

/** The message of the InvalidInputError that `fn` throws; fails when it throws none. */
export function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
}
