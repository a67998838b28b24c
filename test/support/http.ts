/** Small HTTP and assertion helpers shared by the test folders. */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { expect } from 'vitest';
import { InferdError } from '../../src/core/errors.js';

/** One JSON request; the body is parsed when it is JSON, else returned as text. */
export async function request(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.headers = { 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  const r = await fetch(`${url}${path}`, init);
  const text = await r.text();
  let parsed: unknown = text === '' ? undefined : text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: r.status, body: parsed };
}

/** The InferdError a promise rejects with; fails the test when it resolves. */
export async function failure(promise: Promise<unknown>): Promise<InferdError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(InferdError);
    return error as InferdError;
  }
  throw new Error('expected a rejection');
}

export async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}
