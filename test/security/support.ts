/** Shared pieces of the security tests: request contexts, a temporary registry database, a JWKS server. */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { InferenceRequest, InferenceResponse, RequestContext } from '../../src/core/types.js';
import type { ControlCall } from '../../src/pipeline/types.js';
import type { SqlDriver } from '../../src/registry/sql/driver.js';
import { openSecurityDatabase } from '../../src/security/database.js';

export function context(headers: Record<string, string> = {}, model?: string): RequestContext {
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    requestId: randomBytes(4).toString('hex'),
    protocol: 'rest',
    ...(model !== undefined ? { model } : {}),
    header: (name) => lower.get(name),
    responseHeaders: {},
  };
}

export const REQUEST: InferenceRequest = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: new Float32Array([1]) }] };

/** A `next` that records it was reached: the proof that a refused call served nothing. */
export function recorder(): {
  calls: number;
  infer: (ctx: RequestContext, request: InferenceRequest) => Promise<InferenceResponse>;
  control: (ctx: RequestContext, call: ControlCall) => Promise<unknown>;
} {
  const state = {
    calls: 0,
    infer: async (ctx: RequestContext): Promise<InferenceResponse> => {
      state.calls += 1;
      return { model_name: ctx.model ?? 'm', model_version: '1', outputs: [] };
    },
    control: async (): Promise<unknown> => {
      state.calls += 1;
      return { ok: true };
    },
  };
  return state;
}

export async function tempSqlite(): Promise<{ url: string; db: SqlDriver; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inferd-sec-'));
  const url = `sqlite:${path.join(dir, 'registry.db')}`;
  const db = await openSecurityDatabase(url);
  return {
    url,
    db,
    cleanup: async () => {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Serves whatever JSON `body()` returns on loopback; counts the fetches. */
export async function jsonServer(body: () => unknown): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits += 1;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    hits: () => hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
