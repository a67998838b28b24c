/**
 * A model that lives in another Open Inference Protocol server (inferd, Triton, MLServer,
 * KServe), called over HTTP/JSON. Batching, metrics, caching and resilience stay on this side:
 * the scheduler hands this executor merged batches as it would a worker pool. It runs on the
 * main thread, since it only does I/O.
 *
 * Failures map onto the error model so the resilience policies can tell them apart: the
 * upstream unreachable or answering 5xx/429 is UNAVAILABLE (retryable), 504 or our own timeout
 * is DEADLINE_EXCEEDED, 400 is the caller's INVALID_ARGUMENT.
 */
import { DeadlineExceededError, InferdError, InvalidInputError, RuntimeError, UnavailableError } from '../../core/errors.js';
import type { Tensor } from '../../core/types.js';
import { dataJson, decodeTensor } from '../../codecs/json.js';
import { RemoteClient, type RemoteOptions } from './client.js';

export type { RemoteOptions } from './client.js';

/** Largest upstream answer read, in bytes of text. */
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

export class RemoteExecutor extends RemoteClient {
  private readonly base: string;
  private readonly running = new Set<AbortController>();

  constructor(name: string, options: RemoteOptions, executionTimeoutMs: number) {
    super(name, options, executionTimeoutMs);
    const root = options.url.replace(/\/+$/, '');
    const model = encodeURIComponent(options.model ?? name);
    this.base = `${root}/v2/models/${model}${options.version ? `/versions/${encodeURIComponent(options.version)}` : ''}`;
  }

  protected async fetchMetadata(timeoutMs: number): Promise<{ inputs?: unknown; outputs?: unknown; where: string }> {
    const body = (await this.call('GET', this.base, undefined, timeoutMs, 'read the metadata of')) as Record<string, unknown> | null;
    return { inputs: body?.inputs, outputs: body?.outputs, where: this.base };
  }

  protected async run(inputs: Tensor[], outputs: string[], timeoutMs: number): Promise<Tensor[]> {
    let text = '{"inputs":[';
    inputs.forEach((t, i) => {
      text += `${i ? ',' : ''}{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":${JSON.stringify(t.shape)},"data":${dataJson(t)}}`;
    });
    text += `],"outputs":${JSON.stringify(outputs.map((name) => ({ name })))}}`;
    const body = await this.call('POST', `${this.base}/infer`, text, timeoutMs, 'run');
    const raw = (body as { outputs?: unknown }).outputs;
    if (!Array.isArray(raw)) throw new RuntimeError(`remote model '${this.name}' answered without 'outputs'`);
    return this.decodeAnswer(() => raw.map((o, i) => decodeTensor(o, i)));
  }

  abortRunning(reason: InferdError): void {
    for (const c of this.running) c.abort(reason);
  }

  private async call(method: 'GET' | 'POST', url: string, body: string | undefined, timeoutMs: number, what: string): Promise<unknown> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DeadlineExceededError(`remote model '${this.name}' did not answer within ${timeoutMs} ms`)), timeoutMs);
    this.running.add(controller);
    try {
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers: { ...this.options.headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(body !== undefined ? { body } : {}),
          signal: controller.signal,
        });
      } catch (error) {
        if (controller.signal.aborted && controller.signal.reason instanceof InferdError) throw controller.signal.reason;
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        throw new UnavailableError(`could not ${what} remote model '${this.name}' at ${url}: ${cause?.code ?? cause?.message ?? (error as Error).message}`, 1);
      }
      const declared = Number(response.headers.get('content-length') ?? 0);
      if (declared > MAX_ANSWER_BYTES) throw new RuntimeError(`remote model '${this.name}' answered ${declared} bytes, more than ${MAX_ANSWER_BYTES}`);
      let text: string;
      try {
        text = await response.text();
      } catch (error) {
        if (controller.signal.aborted && controller.signal.reason instanceof InferdError) throw controller.signal.reason;
        throw new UnavailableError(`remote model '${this.name}' broke off its answer: ${(error as Error).message}`, 1);
      }
      if (response.status !== 200) throw upstreamError(this.name, response.status, text);
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new RuntimeError(`remote model '${this.name}' answered something that is not JSON`);
      }
    } finally {
      clearTimeout(timer);
      this.running.delete(controller);
    }
  }
}

function upstreamError(name: string, status: number, text: string): InferdError {
  let message = text.slice(0, 500);
  try {
    const e = (JSON.parse(text) as { error?: unknown }).error;
    if (typeof e === 'string') message = e.slice(0, 500);
  } catch {
    // not JSON: keep the text
  }
  const said = `remote model '${name}' answered ${status}: ${message}`;
  if (status === 400 || status === 413 || status === 422) return new InvalidInputError(said);
  if (status === 504 || status === 408) return new DeadlineExceededError(said);
  return new UnavailableError(said, 1);
}
