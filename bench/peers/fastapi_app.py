"""The usual way to serve a model from Python: FastAPI + uvicorn, the model in a process pool.

The pool's initializer loads an onnxruntime InferenceSession into a module global of the child
process; the async route hands each request to the pool with run_in_executor, so the event loop
stays free while the model runs. One request is one model call: nothing batches requests.

Configured by environment variables (set by run.sh):
  PEER_MODEL       breast_cancer or mobilenet_v2
  PEER_MODEL_PATH  path of the model.onnx file

Run: uvicorn fastapi_app:app --port 9000 --workers 1   (or --workers 2: one pool per worker)
"""

import asyncio
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from typing import List

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel

MODEL = os.environ.get("PEER_MODEL", "breast_cancer")
MODEL_PATH = os.environ["PEER_MODEL_PATH"]

model = None


def create_model():
    """Pool initializer: runs once in the child process."""
    global model
    model = ort.InferenceSession(MODEL_PATH, providers=["CPUExecutionProvider"])


def model_predict(data):
    """Runs in the child process: the request data arrives pickled, the result goes back pickled."""
    name = model.get_inputs()[0].name
    outputs = model.run(None, {name: np.asarray(data, dtype=np.float32)})
    return outputs[0].tolist()


class FeaturesRequest(BaseModel):
    features: List[List[float]]


class ImageRequest(BaseModel):
    input: List[List[List[List[float]]]]


pool = None


@asynccontextmanager
async def lifespan(app):
    global pool
    pool = ProcessPoolExecutor(max_workers=1, initializer=create_model)
    # Load the model now rather than on the first request.
    await asyncio.get_running_loop().run_in_executor(pool, int, 0)
    yield
    pool.shutdown()


app = FastAPI(lifespan=lifespan)


if MODEL == "mobilenet_v2":

    @app.post("/predict")
    async def predict(request: ImageRequest):
        loop = asyncio.get_running_loop()
        prediction = await loop.run_in_executor(pool, model_predict, request.input)
        return {"prediction": prediction}

else:

    @app.post("/predict")
    async def predict(request: FeaturesRequest):
        loop = asyncio.get_running_loop()
        prediction = await loop.run_in_executor(pool, model_predict, request.features)
        return {"prediction": prediction}


@app.get("/health")
async def health():
    return {"status": "ok"}
