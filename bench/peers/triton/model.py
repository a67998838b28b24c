"""Triton Python-backend model that runs an ONNX file with onnxruntime.

The Triton build shipped on PyPI (inside nvidia-pytriton) carries only the Python backend, so
the ONNX graph runs through onnxruntime's Python API; batching, queuing, HTTP and gRPC are
Triton's own.
"""
import json
import os
import sys

# The backend stub embeds its own interpreter: point it at the virtual environment that holds
# numpy and onnxruntime (the run script writes that path next to this file).
_site = os.path.join(os.path.dirname(os.path.abspath(__file__)), "site_packages.txt")
if os.path.exists(_site):
    with open(_site) as f:
        sys.path.insert(0, f.read().strip())

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        options = ort.SessionOptions()
        threads = int(params.get("intra_op_threads", "0"))
        if threads > 0:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        path = params.get("onnx_path") or os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o["name"] for o in config["output"]]

    def execute(self, requests):
        # Requests arrive already grouped by the dynamic batcher: run them as one batch.
        feeds = {
            name: [pb_utils.get_input_tensor_by_name(r, name).as_numpy() for r in requests] for name in self.inputs
        }
        sizes = [a.shape[0] for a in feeds[self.inputs[0]]]
        merged = {name: np.concatenate(parts) if len(parts) > 1 else parts[0] for name, parts in feeds.items()}
        results = self.session.run(self.outputs, merged)
        responses = []
        start = 0
        for n in sizes:
            tensors = [pb_utils.Tensor(name, value[start : start + n]) for name, value in zip(self.outputs, results)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += n
        return responses
