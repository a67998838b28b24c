/**
 * The messages of grpc_service.proto as @grpc/proto-loader presents them (see LOADER_OPTIONS):
 * field names as in the .proto, 64-bit integers as decimal strings on the way in (numbers or
 * strings are accepted on the way out), bytes as Buffers, oneofs named by a `parameter_choice`
 * field. Fields are optional because a hand-built message may omit what proto3 defaults.
 */

/** A 64-bit integer: a decimal string as decoded, or a number/string when encoding. */
export type Int64 = string | number;

export type ParameterChoice = 'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param';

export interface InferParameterMsg {
  parameter_choice?: ParameterChoice;
  bool_param?: boolean;
  int64_param?: Int64;
  string_param?: string;
  double_param?: number;
  uint64_param?: Int64;
}

export type ParameterMap = Record<string, InferParameterMsg>;

export interface InferTensorContentsMsg {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: Int64[];
  uint_contents?: number[];
  uint64_contents?: Int64[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

export interface InferInputTensorMsg {
  name?: string;
  datatype?: string;
  shape?: Int64[];
  parameters?: ParameterMap;
  contents?: InferTensorContentsMsg | null;
}

export interface InferRequestedOutputTensorMsg {
  name?: string;
  parameters?: ParameterMap;
}

export interface ModelInferRequestMsg {
  model_name?: string;
  model_version?: string;
  id?: string;
  parameters?: ParameterMap;
  inputs?: InferInputTensorMsg[];
  outputs?: InferRequestedOutputTensorMsg[];
  raw_input_contents?: Uint8Array[];
}

export interface InferOutputTensorMsg {
  name: string;
  datatype: string;
  shape: Int64[];
  parameters?: ParameterMap;
  contents?: InferTensorContentsMsg;
}

export interface ModelInferResponseMsg {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: ParameterMap;
  outputs: InferOutputTensorMsg[];
  raw_output_contents: Uint8Array[];
}

export interface ModelStreamInferResponseMsg {
  error_message: string;
  infer_response?: ModelInferResponseMsg;
}

export interface NameVersionMsg {
  name?: string;
  version?: string;
}

export interface TensorMetadataMsg {
  name: string;
  datatype: string;
  shape: Int64[];
}

export interface ModelMetadataResponseMsg {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadataMsg[];
  outputs: TensorMetadataMsg[];
}

export interface ModelInputMsg {
  name: string;
  data_type: string;
  dims: Int64[];
  optional?: boolean;
}

export interface ModelOutputMsg {
  name: string;
  data_type: string;
  dims: Int64[];
}

export interface ModelConfigMsg {
  name: string;
  platform: string;
  backend: string;
  max_batch_size: number;
  input: ModelInputMsg[];
  output: ModelOutputMsg[];
  model_transaction_policy: { decoupled: boolean };
}

export interface StatisticDurationMsg {
  count: Int64;
  ns: Int64;
}

export interface ModelStatisticsMsg {
  name: string;
  version: string;
  last_inference: Int64;
  inference_count: Int64;
  execution_count: Int64;
  inference_stats: Record<
    'success' | 'fail' | 'queue' | 'compute_input' | 'compute_infer' | 'compute_output' | 'cache_hit' | 'cache_miss',
    StatisticDurationMsg
  >;
  batch_stats: Array<{
    batch_size: Int64;
    compute_input: StatisticDurationMsg;
    compute_infer: StatisticDurationMsg;
    compute_output: StatisticDurationMsg;
  }>;
}

export interface RepositoryIndexRequestMsg {
  repository_name?: string;
  ready?: boolean;
}

export interface RepositoryModelRequestMsg {
  repository_name?: string;
  model_name?: string;
  parameters?: Record<string, unknown>;
}

export interface HealthCheckRequestMsg {
  service?: string;
}

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

export interface HealthCheckResponseMsg {
  status: ServingStatus;
}
