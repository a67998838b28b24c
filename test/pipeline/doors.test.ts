/**
 * Every front door goes through the one pipeline: a test policy that refuses and one that
 * re-routes are installed in a real server, and each door (REST V2 JSON, REST binary, V1
 * :predict, gRPC unary, gRPC stream, admin, repository API) must obey them.
 */
import { cp, mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { InferdError } from '../../src/core/errors.js';
import type { InferenceRequest, InferenceResponse } from '../../src/core/types.js';
import type { ControlCall, NextControl, NextInfer, PipelineContext, Policy } from '../../src/pipeline/types.js';
import { InferdServer } from '../../src/server/index.js';
import { BC_ONNX, BC_ROW } from '../models/support.js';
import { call, connect, type Clients } from '../server/grpc/fixture.js';
import { EXAMPLES } from '../support/paths.js';

/** Refuses any call whose caller sends `x-test-refuse`, naming the door it came through. */
class RefusePolicy implements Policy {
  readonly name = 'test-refuse';
  readonly seen: string[] = [];
  infer(ctx: PipelineContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    this.check(ctx, 'infer');
    return next(ctx, request);
  }
  control(ctx: PipelineContext, call: ControlCall, next: NextControl): Promise<unknown> {
    this.check(ctx, call.action);
    return next(ctx, call);
  }
  private check(ctx: PipelineContext, what: string): void {
    this.seen.push(`${ctx.door}:${what}`);
    if (ctx.header?.('x-test-refuse') !== undefined) throw new InferdError('PERMISSION_DENIED', `refused by the test policy at ${ctx.door}`);
  }
}

/** Sends a request that names no version to the version in `x-test-route`, and says so in a header. */
class RoutePolicy implements Policy {
  readonly name = 'test-route';
  infer(ctx: PipelineContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    const to = ctx.header?.('x-test-route');
    if (to !== undefined && ctx.version === undefined) {
      ctx.version = to;
      ctx.variant = `v${to}`;
      ctx.responseHeaders!['x-inferd-variant'] = ctx.variant;
    }
    return next(ctx, request);
  }
}

const refuse = new RefusePolicy();
let server: InferdServer;
let url: string;
let clients: Clients;
const ROW = { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: BC_ROW }] };

beforeAll(async () => {
  // breast_cancer with two versions, both served.
  const repo = await mkdtemp(join(tmpdir(), 'inferd-doors-'));
  for (const v of ['1', '2']) {
    await mkdir(join(repo, 'breast_cancer', v), { recursive: true });
    await cp(BC_ONNX, join(repo, 'breast_cancer', v, 'model.onnx'));
  }
  await cp(join(EXAMPLES, 'breast_cancer', 'config.yaml'), join(repo, 'breast_cancer', 'config.yaml'));
  await writeFile(join(repo, 'breast_cancer', 'config.yaml'), 'version_policy: { all: true }\n', { flag: 'a' });
  const config = loadConfig({
    env: {},
    overrides: { model_repository: repo, server: { host: '127.0.0.1', http_port: 0, grpc_port: 0 }, logging: { level: 'silent' } },
  });
  server = await InferdServer.start(config, pino({ level: 'silent' }), {
    // The test policies go right after admission, where security policies live.
    policies: (chain) => [chain[0]!, chain[1]!, refuse, new RoutePolicy(), ...chain.slice(2)],
  });
  url = `http://127.0.0.1:${server.httpPort}`;
  clients = connect(server.grpcPort);
}, 120_000);

afterAll(async () => {
  clients?.close();
  await server?.shutdown(2000);
});

async function rest(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; headers: Headers; body: any }> {
  const r = await fetch(`${url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : body instanceof Uint8Array ? Buffer.from(body) : JSON.stringify(body) }),
  });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // binary answers stay text
  }
  return { status: r.status, headers: r.headers, body: parsed };
}

/** A REST binary-extension body: a JSON header, then the FP32 row. */
function binaryBody(): { body: Uint8Array; headerLength: number } {
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], parameters: { binary_data_size: 120 } }] }));
  const data = Buffer.from(new Float32Array(BC_ROW).buffer);
  return { body: Buffer.concat([header, data]), headerLength: header.length };
}

function grpcRequest(version = '') {
  return {
    model_name: 'breast_cancer',
    model_version: version,
    inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], contents: { fp32_contents: BC_ROW } }],
  };
}

function metadata(entries: Record<string, string>): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(entries)) md.set(k, v);
  return md;
}

function stream(entries: Record<string, string>, version = ''): Promise<{ error_message: string; infer_response: { model_version: string } }> {
  return new Promise((resolve, reject) => {
    const s = (clients.inference.ModelStreamInfer as (md: grpc.Metadata) => grpc.ClientDuplexStream<object, never>).call(clients.inference, metadata(entries));
    s.once('data', (m: { error_message: string; infer_response: { model_version: string } }) => {
      s.end();
      resolve(m);
    });
    s.once('error', reject);
    s.write(grpcRequest(version));
  });
}

describe('every door runs the one pipeline', () => {
  it('REST V2 JSON: refused, re-routed, and served', async () => {
    const refused = await rest('POST', '/v2/models/breast_cancer/infer', { 'x-test-refuse': '1' }, ROW);
    expect(refused.status).toBe(403);
    expect(refused.body.error).toBe('refused by the test policy at rest.v2');
    const routed = await rest('POST', '/v2/models/breast_cancer/infer', { 'x-test-route': '1' }, ROW);
    expect(routed.status).toBe(200);
    expect(routed.body.model_version).toBe('1');
    expect(routed.headers.get('x-inferd-variant')).toBe('v1');
    const latest = await rest('POST', '/v2/models/breast_cancer/infer', {}, ROW);
    expect(latest.body.model_version).toBe('2');
  });

  it('REST binary extension: refused and re-routed', async () => {
    const { body, headerLength } = binaryBody();
    const h = { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) };
    const refused = await rest('POST', '/v2/models/breast_cancer/infer', { ...h, 'x-test-refuse': '1' }, body);
    expect(refused.status).toBe(403);
    expect(refused.body.error).toContain('rest.binary');
    const routed = await rest('POST', '/v2/models/breast_cancer/infer', { ...h, 'x-test-route': '1' }, body);
    expect(routed.status).toBe(200);
    expect(routed.body.model_version).toBe('1');
  });

  it('KServe V1 :predict: refused and re-routed', async () => {
    const instances = { instances: [BC_ROW] };
    const refused = await rest('POST', '/v1/models/breast_cancer:predict', { 'x-test-refuse': '1' }, instances);
    expect(refused.status).toBe(403);
    expect(refused.body.error).toContain('rest.v1');
    const routed = await rest('POST', '/v1/models/breast_cancer:predict', { 'x-test-route': '1' }, instances);
    expect(routed.status).toBe(200);
    expect(routed.headers.get('x-inferd-variant')).toBe('v1');
    expect(routed.body.predictions).toHaveLength(1);
  });

  it('gRPC unary: refused with PERMISSION_DENIED, re-routed with the variant in metadata', async () => {
    await expect(call(clients.inference, 'ModelInfer', grpcRequest(), { metadata: metadata({ 'x-test-refuse': '1' }) })).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      details: 'refused by the test policy at grpc.unary',
    });
    const routed = await call<{ model_version: string }>(clients.inference, 'ModelInfer', grpcRequest(), { metadata: metadata({ 'x-test-route': '1' }) });
    expect(routed.response.model_version).toBe('1');
    expect(routed.headers.get('x-inferd-variant')).toEqual(['v1']);
  });

  it('gRPC stream: each message refused or re-routed', async () => {
    const refused = await stream({ 'x-test-refuse': '1' });
    expect(refused.error_message).toBe('refused by the test policy at grpc.stream');
    const routed = await stream({ 'x-test-route': '1' });
    expect(routed.error_message).toBe('');
    expect(routed.infer_response.model_version).toBe('1');
  });

  it('metadata, readiness, repository and admin calls: refused', async () => {
    for (const [method, path] of [
      ['GET', '/v2/models/breast_cancer'],
      ['GET', '/v2/models/breast_cancer/ready'],
      ['GET', '/v2/models/breast_cancer/stats'],
      ['POST', '/v2/repository/index'],
      ['POST', '/v2/repository/models/breast_cancer/unload'],
      ['GET', '/v2/admin/models'],
    ] as const) {
      const r = await rest(method, path, { 'x-test-refuse': '1' }, method === 'POST' ? {} : undefined);
      expect(r.status, `${method} ${path}`).toBe(403);
    }
    await expect(call(clients.inference, 'ModelMetadata', { name: 'breast_cancer' }, { metadata: metadata({ 'x-test-refuse': '1' }) })).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
    });
    await expect(call(clients.inference, 'RepositoryModelUnload', { model_name: 'breast_cancer' }, { metadata: metadata({ 'x-test-refuse': '1' }) })).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
    });
    // Nothing was unloaded by the refused calls.
    expect((await rest('GET', '/v2/models/breast_cancer/ready', {})).status).toBe(200);
    expect(refuse.seen).toEqual(expect.arrayContaining(['admin:admin.models', 'rest.v2:model.unload', 'grpc.unary:model.unload', 'grpc.unary:model.metadata']));
  });

  it('a request the door cannot decode still meets the pipeline first', async () => {
    // A refused caller learns nothing about its body: the policy answers before the decoder's error.
    const r = await rest('POST', '/v2/models/breast_cancer/infer', { 'x-test-refuse': '1' }, '{not json');
    expect(r.status).toBe(403);
    const ok = await rest('POST', '/v2/models/breast_cancer/infer', {}, '{not json');
    expect(ok.status).toBe(400);
    expect(ok.body.error).toMatch(/not valid JSON/);
  });

  it('echoes the correlation id under the key it came in, over REST and gRPC', async () => {
    const a = await rest('POST', '/v2/models/breast_cancer/infer', { 'x-correlation-id': 'corr-42' }, ROW);
    expect(a.headers.get('x-correlation-id')).toBe('corr-42');
    expect(a.headers.get('x-request-id')).toBeNull();
    const b = await rest('POST', '/v2/models/breast_cancer/infer', { 'x-request-id': 'req-42' }, ROW);
    expect(b.headers.get('x-request-id')).toBe('req-42');
    const g = await call(clients.inference, 'ModelInfer', grpcRequest(), { metadata: metadata({ 'x-correlation-id': 'corr-g' }) });
    expect(g.headers.get('x-correlation-id')).toEqual(['corr-g']);
  });
});
