/**
 * Where batch rows are scored: an in-process data plane over a model repository (as `inferd
 * serve` builds it), or a running inferd server over REST.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { DataPlane } from '../../pipeline/dataplane.js';
import { InferdError, InvalidInputError, UnavailableError } from '../../core/errors.js';
import type { InferenceRequest, InferenceResponse, ModelMetadata, Tensor } from '../../core/types.js';
import { fromValues } from '../../core/tensor.js';
import { ModelManager } from '../../models/manager.js';
import { ModelRepository } from '../../models/repository.js';
import { dataJson } from '../../codecs/json.js';
import { streamContext } from '../plane.js';
import { standardPolicies } from '../../pipeline/standard.js';

export interface Scorer {
  readonly model: string;
  readonly version: string | undefined;
  metadata(): Promise<ModelMetadata>;
  infer(request: InferenceRequest, correlationId: string): Promise<InferenceResponse>;
  close(): Promise<void>;
}

/** Scores through a data plane the caller owns (a server's, or a test's). */
export function planeScorer(plane: DataPlane, model: string, version?: string, close: () => Promise<void> = async () => undefined): Scorer {
  return {
    model,
    version,
    async metadata() {
      return plane.modelMetadata(streamContext('batch', model, version, `metadata-${model}`), model, version);
    },
    infer(request, correlationId) {
      return plane.infer(streamContext('batch', model, version, correlationId), request);
    },
    close,
  };
}

/** Loads one model of a repository into an in-process data plane. */
export async function repositoryScorer(repositoryDir: string, model: string, version: string | undefined, logger?: Logger): Promise<Scorer> {
  const manager = new ModelManager(new ModelRepository(repositoryDir), logger ? { logger } : {});
  try {
    await manager.start(model);
  } catch (error) {
    await manager.close();
    throw error;
  }
  const plane = new DataPlane(manager, { policies: (self) => standardPolicies({ manager, plane: self }) });
  plane.markStarted();
  return planeScorer(plane, model, version, () => manager.close());
}

interface JsonTensor {
  name: string;
  datatype: Tensor['datatype'];
  shape: number[];
  data: unknown[];
}

/** Scores through a running server's REST API (OIP JSON). */
export function urlScorer(baseUrl: string, model: string, version: string | undefined, timeoutMs = 60_000): Scorer {
  const base = baseUrl.replace(/\/+$/, '');
  const path = `${base}/v2/models/${encodeURIComponent(model)}${version !== undefined ? `/versions/${encodeURIComponent(version)}` : ''}`;
  async function call(url: string, init: RequestInit): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      throw new UnavailableError(`${url}: ${(error as Error).message}`);
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = { error: text };
    }
    if (!response.ok) {
      const message = (body as { error?: string }).error ?? `HTTP ${response.status}`;
      if (response.status >= 500) throw new UnavailableError(`${url}: ${message}`);
      throw new InferdError(response.status === 404 ? 'NOT_FOUND' : 'INVALID_ARGUMENT', `${url}: ${message}`);
    }
    return body;
  }
  return {
    model,
    version,
    async metadata() {
      return (await call(path, { method: 'GET' })) as ModelMetadata;
    },
    async infer(request, correlationId) {
      const body = `{"id":${JSON.stringify(correlationId)},"inputs":[${request.inputs
        .map((t) => `{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}],"data":${dataJson(t)}}`)
        .join(',')}]}`;
      const answer = (await call(`${path}/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-correlation-id': correlationId }, body })) as {
        model_name: string;
        model_version: string;
        outputs: JsonTensor[];
      };
      if (!Array.isArray(answer.outputs)) throw new InvalidInputError(`${path}/infer answered without outputs`);
      return {
        model_name: answer.model_name,
        model_version: answer.model_version,
        outputs: answer.outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape, data: fromValues(o.datatype, o.data, `output '${o.name}'`) })),
      };
    },
    async close() {},
  };
}

export function newCorrelationId(): string {
  return randomUUID();
}
