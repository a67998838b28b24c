/** The shared reference models and data the tests use, and a way to make a "retrained" copy. */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SHARED_MODELS } from './paths.js';

export const BC_ONNX = join(SHARED_MODELS, 'breast_cancer', '1', 'model.onnx');
export const BC_TRAIN = join(SHARED_MODELS, 'breast_cancer', 'data', 'train.csv');
export const BC_TEST = join(SHARED_MODELS, 'breast_cancer', 'data', 'test.csv');
export const DIGITS_ONNX = join(SHARED_MODELS, 'digits', '1', 'model.onnx');
export const DIGITS_TRAIN = join(SHARED_MODELS, 'digits', 'data', 'train.csv');
export const TEXT_ONNX = join(SHARED_MODELS, 'text_encoder_tiny', '1', 'model.onnx');

/**
 * A different file with the same graph and signature, as a retrained model would be: the ONNX
 * ModelProto gets a doc_string (field 6) appended, which protobuf merges last-wins.
 */
export async function retrained(source: string, target: string, note: string): Promise<string> {
  const bytes = await readFile(source);
  const text = Buffer.from(note, 'utf8');
  if (text.length > 127) throw new Error('note too long for a one-byte length');
  await writeFile(target, Buffer.concat([bytes, Buffer.from([0x32, text.length]), text]));
  return target;
}
