"""A custom MLServer runtime that serves an ONNX file with onnxruntime.

MLServer ships no ONNX runtime of its own; this is the small class its documentation suggests
writing: load() creates the session, predict() decodes the V2 request with MLServer's numpy
codec, runs the session and encodes the outputs. With adaptive batching on, MLServer merges
concurrent requests along the first dimension before predict() sees them.

Model settings parameters (model-settings.json):
  parameters.uri                       path of the model.onnx file
  parameters.extra.intra_op_threads    onnxruntime intra-op threads (0: onnxruntime's default)
"""

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxModel(MLModel):
    async def load(self) -> bool:
        params = self.settings.parameters
        extra = (params.extra or {}) if params else {}
        options = ort.SessionOptions()
        threads = int(extra.get("intra_op_threads", 0))
        if threads > 0:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(params.uri, options, providers=["CPUExecutionProvider"])
        self._input_types = {i.name: i.type for i in self._session.get_inputs()}
        self._output_names = [o.name for o in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {}
        for request_input in payload.inputs:
            array = NumpyCodec.decode_input(request_input)
            if self._input_types.get(request_input.name) == "tensor(float)":
                array = array.astype(np.float32, copy=False)
            feeds[request_input.name] = array
        results = self._session.run(self._output_names, feeds)
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output(name, value) for name, value in zip(self._output_names, results)],
        )
