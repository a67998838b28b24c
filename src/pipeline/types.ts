/**
 * The request pipeline's contracts. Every request from every front door (REST, gRPC, admin,
 * Kafka, batch) runs through one ordered chain of policies in the data plane. A policy is one
 * file with one job: it can inspect a call, refuse it (throw an InferdError), answer it itself
 * (a cache), re-route it (set `ctx.version`), or observe the answer. Order lives in
 * src/pipeline/chain.ts.
 *
 * Two kinds of call go through the chain:
 * - inference (`infer`): the hook receives the decoded request and a `next` that runs the rest
 *   of the chain and, at its end, the model version's scheduler and workers;
 * - everything else (`control`): metadata, readiness, statistics, repository and admin
 *   operations; the hook sees what is asked (`ControlCall`) and a `next` that performs it.
 * A policy implements the hooks it cares about; the others pass straight through.
 */
import type { InferenceRequest, InferenceResponse, RequestContext } from '../core/types.js';

export type NextInfer = (ctx: RequestContext, request: InferenceRequest) => Promise<InferenceResponse>;
export type NextControl = (ctx: RequestContext, call: ControlCall) => Promise<unknown>;

/** A non-inference operation, described for policies (authorisation, audit, admission). */
export interface ControlCall {
  /**
   * What is asked, as `area.verb`: `server.metadata`, `model.metadata`, `model.ready`,
   * `model.stats`, `repository.index`, `model.load`, `model.unload`, `registry.alias`,
   * `registry.stage`, `registry.register`, `registry.delete`, `traffic.set`, `keys.create`...
   */
  action: string;
  /** True when the call changes state (load, unload, registry or traffic writes). */
  write: boolean;
  /** The model it concerns, when it concerns one. */
  model?: string;
  version?: string;
  /** Anything else worth an audit record (alias name, stage, new weights...). No secrets. */
  details?: Record<string, unknown>;
}

export interface Policy {
  /** Short name, used in logs and in the chain's order. */
  readonly name: string;
  infer?(ctx: RequestContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse>;
  control?(ctx: RequestContext, call: ControlCall, next: NextControl): Promise<unknown>;
}
