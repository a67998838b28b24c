"""Open Inference Protocol conformance checks, run with the official Triton clients.

Usage: oip_checks.py --protocol http|grpc --url HOST:PORT --golden-dir DIR

Runs every check against a live inferd serving the example repository (breast_cancer, digits,
text_encoder_tiny, text_tokenizer) and prints one JSON object, {check: {"ok": bool, "detail": str}},
on the last line of stdout. A failing check never stops the others.
"""

import argparse
import json
import sys
import traceback
import urllib.error
import urllib.request

import numpy as np

CHECKS = {}


def check(*protocols):
    def register(fn):
        CHECKS[fn.__name__] = (protocols or ("http", "grpc"), fn)
        return fn

    return register


class Ctx:
    def __init__(self, protocol, url, golden_dir):
        self.protocol = protocol
        self.url = url
        if protocol == "http":
            import tritonclient.http as client
        else:
            import tritonclient.grpc as client
        self.mod = client
        self.client = client.InferenceServerClient(url)
        self.golden = {}
        for model in ("breast_cancer", "digits", "text_encoder_tiny"):
            with open(f"{golden_dir}/{model}/golden.json") as f:
                self.golden[model] = json.load(f)

    def golden_array(self, model, kind, name, dtype):
        t = self.golden[model][kind][name]
        return np.array(t["data"], dtype=dtype).reshape(t["shape"])

    def input(self, name, array, datatype, binary=True):
        i = self.mod.InferInput(name, list(array.shape), datatype)
        if self.protocol == "http":
            i.set_data_from_numpy(array, binary_data=binary)
        else:
            i.set_data_from_numpy(array)
        return i

    def output(self, name, binary=True):
        if self.protocol == "http":
            return self.mod.InferRequestedOutput(name, binary_data=binary)
        return self.mod.InferRequestedOutput(name)


def expect(condition, detail):
    if not condition:
        raise AssertionError(detail)


def close(actual, expected, tolerance=1e-5):
    expect(actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}")
    worst = float(np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64)))) if actual.size else 0.0
    expect(worst <= tolerance, f"max difference {worst} > {tolerance}")


def expect_error(ctx, fn, http_statuses, grpc_code, pattern=None):
    from tritonclient.utils import InferenceServerException

    try:
        fn()
    except InferenceServerException as e:
        status = str(e.status())
        message = e.message() or ""
        if ctx.protocol == "http":
            expect(status in {str(s) for s in http_statuses}, f"HTTP status {status}, expected one of {http_statuses}: {message}")
        else:
            expect(status == f"StatusCode.{grpc_code}", f"gRPC status {status}, expected {grpc_code}: {message}")
        if pattern is not None:
            expect(pattern in message, f"message {message!r} does not mention {pattern!r}")
        return message
    raise AssertionError("the call succeeded but an error was expected")


# ---- health and metadata ----


@check()
def server_live(ctx):
    expect(ctx.client.is_server_live() is True, "server not live")


@check()
def server_ready(ctx):
    expect(ctx.client.is_server_ready() is True, "server not ready")


@check()
def server_metadata(ctx):
    md = ctx.client.get_server_metadata()
    if ctx.protocol == "grpc":
        md = {"name": md.name, "version": md.version, "extensions": list(md.extensions)}
    expect(md["name"] == "inferd", f"name {md['name']!r}")
    expect(md["version"], "no version")
    for ext in ("binary_tensor_data", "model_repository", "statistics"):
        expect(ext in md["extensions"], f"extension {ext} missing from {md['extensions']}")


@check()
def model_ready(ctx):
    for model in ("breast_cancer", "digits", "text_encoder_tiny", "text_tokenizer"):
        expect(ctx.client.is_model_ready(model) is True, f"{model} not ready")
    expect(ctx.client.is_model_ready("breast_cancer", "1") is True, "breast_cancer version 1 not ready")
    expect(ctx.client.is_model_ready("no_such_model") is False, "an unknown model reads as ready")


def metadata_dict(ctx, md):
    if ctx.protocol == "http":
        return md
    tensors = lambda ts: [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in ts]
    return {"name": md.name, "versions": list(md.versions), "platform": md.platform, "inputs": tensors(md.inputs), "outputs": tensors(md.outputs)}


@check()
def model_metadata(ctx):
    md = metadata_dict(ctx, ctx.client.get_model_metadata("breast_cancer"))
    expect(md["name"] == "breast_cancer" and "1" in md["versions"], f"{md['name']} {md['versions']}")
    expect(md["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 30]}], f"inputs {md['inputs']}")
    expect(
        md["outputs"]
        == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}, {"name": "label", "datatype": "INT64", "shape": [-1]}],
        f"outputs {md['outputs']}",
    )
    enc = metadata_dict(ctx, ctx.client.get_model_metadata("text_encoder_tiny", "1"))
    expect([(t["name"], t["datatype"], t["shape"]) for t in enc["inputs"]] == [("input_ids", "INT64", [-1, -1]), ("attention_mask", "INT64", [-1, -1])], f"inputs {enc['inputs']}")
    tok = metadata_dict(ctx, ctx.client.get_model_metadata("text_tokenizer"))
    expect(tok["inputs"][0]["datatype"] == "BYTES", f"tokenizer inputs {tok['inputs']}")


@check()
def model_metadata_unknown(ctx):
    expect_error(ctx, lambda: ctx.client.get_model_metadata("no_such_model"), (400, 404), "NOT_FOUND", "no_such_model")


@check()
def model_config(ctx):
    config = ctx.client.get_model_config("breast_cancer")
    if ctx.protocol == "grpc":
        config = config.config
        inputs = [(i.name, i.dims[-1]) for i in config.input]
        name = config.name
    else:
        inputs = [(i["name"], i["dims"][-1]) for i in config.get("input", [])]
        name = config.get("name")
    expect(name == "breast_cancer", f"name {name!r}")
    expect(inputs == [("features", 30)], f"inputs {inputs}")


# ---- inference ----


def features(ctx, rows=None):
    x = ctx.golden_array("breast_cancer", "inputs", "features", np.float32)
    return x if rows is None else x[:rows]


@check()
def infer_fp32_binary(ctx):
    x = features(ctx)
    r = ctx.client.infer("breast_cancer", [ctx.input("features", x, "FP32")], outputs=[ctx.output("probabilities"), ctx.output("label")])
    close(r.as_numpy("probabilities"), ctx.golden_array("breast_cancer", "outputs", "probabilities", np.float32))
    label = r.as_numpy("label")
    expect(label.dtype == np.int64, f"label dtype {label.dtype}")
    expect((label == ctx.golden_array("breast_cancer", "outputs", "label", np.int64)).all(), f"labels {label}")


@check("http")
def infer_fp32_json(ctx):
    x = features(ctx)
    r = ctx.client.infer(
        "breast_cancer",
        [ctx.input("features", x, "FP32", binary=False)],
        outputs=[ctx.output("probabilities", binary=False), ctx.output("label", binary=False)],
    )
    body = r.get_response()
    expect(all("data" in o and "binary_data_size" not in (o.get("parameters") or {}) for o in body["outputs"]), f"outputs not JSON: {body}")
    close(r.as_numpy("probabilities"), ctx.golden_array("breast_cancer", "outputs", "probabilities", np.float32))
    expect((r.as_numpy("label") == ctx.golden_array("breast_cancer", "outputs", "label", np.int64)).all(), "labels differ")


@check("http")
def infer_json_in_binary_out(ctx):
    x = features(ctx, 3)
    r = ctx.client.infer(
        "breast_cancer",
        [ctx.input("features", x, "FP32", binary=False)],
        outputs=[ctx.output("probabilities", binary=True), ctx.output("label", binary=False)],
    )
    outs = {o["name"]: o for o in r.get_response()["outputs"]}
    expect("binary_data_size" in (outs["probabilities"].get("parameters") or {}), f"probabilities not binary: {outs['probabilities']}")
    expect("data" in outs["label"], f"label not JSON: {outs['label']}")
    close(r.as_numpy("probabilities"), ctx.golden_array("breast_cancer", "outputs", "probabilities", np.float32)[:3])


@check("http")
def infer_binary_in_json_out(ctx):
    x = features(ctx, 2)
    r = ctx.client.infer("breast_cancer", [ctx.input("features", x, "FP32", binary=True)], outputs=[ctx.output("label", binary=False)])
    expect(r.as_numpy("label").tolist() == ctx.golden_array("breast_cancer", "outputs", "label", np.int64)[:2].tolist(), "labels differ")


@check()
def infer_all_outputs_by_default(ctx):
    r = ctx.client.infer("breast_cancer", [ctx.input("features", features(ctx, 1), "FP32")])
    names = sorted(o["name"] for o in r.get_response()["outputs"]) if ctx.protocol == "http" else sorted(o.name for o in r.get_response().outputs)
    expect(names == ["label", "probabilities"], f"outputs {names}")


@check()
def infer_requested_output(ctx):
    r = ctx.client.infer("breast_cancer", [ctx.input("features", features(ctx), "FP32")], outputs=[ctx.output("label")])
    expect(r.as_numpy("probabilities") is None, "probabilities returned though not requested")
    expect((r.as_numpy("label") == ctx.golden_array("breast_cancer", "outputs", "label", np.int64)).all(), "labels differ")


@check()
def infer_fp32_4d(ctx):
    x = ctx.golden_array("digits", "inputs", "image", np.float32)
    r = ctx.client.infer("digits", [ctx.input("image", x, "FP32")])
    close(r.as_numpy("probabilities"), ctx.golden_array("digits", "outputs", "probabilities", np.float32))


@check()
def infer_int64_inputs(ctx):
    ids = ctx.golden_array("text_encoder_tiny", "inputs", "input_ids", np.int64)
    mask = ctx.golden_array("text_encoder_tiny", "inputs", "attention_mask", np.int64)
    r = ctx.client.infer("text_encoder_tiny", [ctx.input("input_ids", ids, "INT64"), ctx.input("attention_mask", mask, "INT64")])
    close(r.as_numpy("embedding"), ctx.golden_array("text_encoder_tiny", "outputs", "embedding", np.float32))


@check("http")
def infer_int64_json(ctx):
    ids = ctx.golden_array("text_encoder_tiny", "inputs", "input_ids", np.int64)
    mask = ctx.golden_array("text_encoder_tiny", "inputs", "attention_mask", np.int64)
    r = ctx.client.infer(
        "text_encoder_tiny",
        [ctx.input("input_ids", ids, "INT64", binary=False), ctx.input("attention_mask", mask, "INT64", binary=True)],
        outputs=[ctx.output("embedding", binary=False)],
    )
    close(r.as_numpy("embedding"), ctx.golden_array("text_encoder_tiny", "outputs", "embedding", np.float32))


def tokenizer_check(ctx, binary):
    text = np.array([b"the quick brown fox", "h\u00e9llo w\u00f6rld".encode()], dtype=np.object_)
    r = ctx.client.infer(
        "text_tokenizer",
        [ctx.input("text", text, "BYTES", binary=binary)],
        outputs=[ctx.output("input_ids", binary=binary), ctx.output("attention_mask", binary=binary)],
    )
    ids, mask = r.as_numpy("input_ids"), r.as_numpy("attention_mask")
    expect(ids.dtype == np.int64 and ids.shape[0] == 2 and ids.shape == mask.shape, f"ids {ids.dtype} {ids.shape}, mask {mask.shape}")
    expect(mask[0].sum() == 4 and mask[1].sum() == 2, f"mask {mask}")
    return ids


@check()
def infer_bytes_binary(ctx):
    tokenizer_check(ctx, True)


@check("http")
def infer_bytes_json(ctx):
    expect((tokenizer_check(ctx, False) == tokenizer_check(ctx, True)).all(), "JSON and binary BYTES disagree")


@check()
def infer_request_id(ctx):
    r = ctx.client.infer("breast_cancer", [ctx.input("features", features(ctx, 1), "FP32")], request_id="conformance-42")
    rid = r.get_response()["id"] if ctx.protocol == "http" else r.get_response().id
    expect(rid == "conformance-42", f"id {rid!r}")


@check()
def infer_async(ctx):
    x = features(ctx)
    expected = ctx.golden_array("breast_cancer", "outputs", "label", np.int64)
    if ctx.protocol == "http":
        import tritonclient.http as httpclient

        client = httpclient.InferenceServerClient(ctx.url, concurrency=8)
        pending = [client.async_infer("breast_cancer", [ctx.input("features", x[i : i + 1], "FP32")]) for i in range(len(x))]
        labels = [p.get_result().as_numpy("label")[0] for p in pending]
        client.close()
    else:
        import queue

        done = queue.Queue()
        for i in range(len(x)):
            ctx.client.async_infer("breast_cancer", [ctx.input("features", x[i : i + 1], "FP32")], callback=lambda result, error, i=i: done.put((i, result, error)))
        results = sorted(done.get(timeout=30) for _ in range(len(x)))
        for _, _, error in results:
            expect(error is None, f"async error {error}")
        labels = [r.as_numpy("label")[0] for _, r, _ in results]
    expect(labels == expected.tolist(), f"labels {labels}")


@check("grpc")
def infer_stream(ctx):
    import queue

    results = queue.Queue()
    ctx.client.start_stream(callback=lambda result, error: results.put((result, error)))
    try:
        x = features(ctx)
        for i in range(len(x)):
            ctx.client.async_stream_infer("breast_cancer", [ctx.input("features", x[i : i + 1], "FP32")], request_id=f"s{i}")
        ctx.client.async_stream_infer("no_such_model", [ctx.input("features", x[:1], "FP32")], request_id="bad")
        got = {}
        errors = []
        for _ in range(len(x) + 1):
            r, e = results.get(timeout=30)
            if e is not None:
                errors.append(str(e))
            else:
                got[r.get_response().id] = int(r.as_numpy("label")[0])
    finally:
        ctx.client.stop_stream()
    expected = ctx.golden_array("breast_cancer", "outputs", "label", np.int64).tolist()
    expect([got.get(f"s{i}") for i in range(len(expected))] == expected, f"stream labels {got}")
    expect(len(errors) == 1 and "no_such_model" in errors[0], f"stream errors {errors}")


# ---- errors ----


@check()
def error_unknown_model(ctx):
    expect_error(ctx, lambda: ctx.client.infer("no_such_model", [ctx.input("features", features(ctx, 1), "FP32")]), (400, 404), "NOT_FOUND", "no_such_model")


@check()
def error_unknown_version(ctx):
    expect_error(
        ctx, lambda: ctx.client.infer("breast_cancer", [ctx.input("features", features(ctx, 1), "FP32")], model_version="99"), (400, 404), "NOT_FOUND", "99"
    )


@check()
def error_wrong_datatype(ctx):
    x = features(ctx, 1).astype(np.float64)
    expect_error(ctx, lambda: ctx.client.infer("breast_cancer", [ctx.input("features", x, "FP64")]), (400,), "INVALID_ARGUMENT", "features")


@check()
def error_wrong_shape(ctx):
    x = features(ctx, 2)[:, :29].copy()
    expect_error(ctx, lambda: ctx.client.infer("breast_cancer", [ctx.input("features", x, "FP32")]), (400,), "INVALID_ARGUMENT", "features")


@check()
def error_unknown_input(ctx):
    expect_error(ctx, lambda: ctx.client.infer("breast_cancer", [ctx.input("nope", features(ctx, 1), "FP32")]), (400,), "INVALID_ARGUMENT", "nope")


@check()
def error_missing_input(ctx):
    ids = ctx.golden_array("text_encoder_tiny", "inputs", "input_ids", np.int64)
    expect_error(ctx, lambda: ctx.client.infer("text_encoder_tiny", [ctx.input("input_ids", ids, "INT64")]), (400,), "INVALID_ARGUMENT", "attention_mask")


@check()
def error_unknown_output(ctx):
    expect_error(
        ctx,
        lambda: ctx.client.infer("breast_cancer", [ctx.input("features", features(ctx, 1), "FP32")], outputs=[ctx.output("nope")]),
        (400,),
        "INVALID_ARGUMENT",
        "nope",
    )


@check()
def error_data_size_mismatch(ctx):
    """Raw bytes that do not match the declared shape: built by hand, as the clients never send them."""
    payload = np.zeros((1, 30), dtype=np.float32).tobytes()[:-4]
    if ctx.protocol == "http":
        header = json.dumps(
            {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 30], "parameters": {"binary_data_size": len(payload)}}]}
        ).encode()
        request = urllib.request.Request(
            f"http://{ctx.url}/v2/models/breast_cancer/infer",
            data=header + payload,
            headers={"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))},
            method="POST",
        )
        try:
            urllib.request.urlopen(request)
            raise AssertionError("the request succeeded")
        except urllib.error.HTTPError as e:
            body = json.loads(e.read())
            expect(e.code == 400, f"HTTP {e.code}: {body}")
            expect("116 bytes" in body["error"] and "120" in body["error"], f"error {body['error']!r}")
    else:
        import grpc
        from tritonclient.grpc import service_pb2, service_pb2_grpc

        request = service_pb2.ModelInferRequest(model_name="breast_cancer")
        tensor = request.inputs.add(name="features", datatype="FP32")
        tensor.shape.extend([1, 30])
        request.raw_input_contents.append(payload)
        with grpc.insecure_channel(ctx.url) as channel:
            try:
                service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request)
                raise AssertionError("the request succeeded")
            except grpc.RpcError as e:
                expect(e.code() == grpc.StatusCode.INVALID_ARGUMENT, f"status {e.code()}: {e.details()}")
                expect("116 bytes" in e.details() and "120" in e.details(), f"details {e.details()!r}")


# ---- extensions ----


@check()
def statistics(ctx):
    stats = ctx.client.get_inference_statistics("breast_cancer")
    if ctx.protocol == "grpc":
        from google.protobuf.json_format import MessageToDict

        stats = MessageToDict(stats, preserving_proto_field_name=True)
    entry = stats["model_stats"][0]
    expect(entry["name"] == "breast_cancer", f"name {entry['name']}")
    expect(int(entry["inference_count"]) > 0, f"inference_count {entry.get('inference_count')}")
    expect(int(entry["inference_stats"]["success"]["count"]) > 0, f"success {entry['inference_stats']['success']}")


@check()
def repository_index(ctx):
    index = ctx.client.get_model_repository_index()
    if ctx.protocol == "grpc":
        index = [{"name": m.name, "state": m.state} for m in index.models]
    states = {m["name"]: m.get("state") for m in index}
    for model in ("breast_cancer", "digits", "text_encoder_tiny", "text_tokenizer"):
        expect(states.get(model) == "READY", f"{model}: {states.get(model)}")


@check()
def unload_and_load(ctx):
    ctx.client.unload_model("digits")
    expect(ctx.client.is_model_ready("digits") is False, "digits still ready after unload")
    ctx.client.load_model("digits")
    expect(ctx.client.is_model_ready("digits") is True, "digits not ready after load")
    infer_fp32_4d(ctx)


@check("grpc")
def grpc_health(ctx):
    import grpc

    def check_service(channel, name):
        encoded = name.encode()
        request = (b"\x0a" + bytes([len(encoded)]) + encoded) if encoded else b""
        return channel.unary_unary("/grpc.health.v1.Health/Check")(request)

    with grpc.insecure_channel(ctx.url) as channel:
        expect(check_service(channel, "") == b"\x08\x01", "server not SERVING")
        expect(check_service(channel, "breast_cancer") == b"\x08\x01", "breast_cancer not SERVING")
        try:
            check_service(channel, "no_such_model")
            raise AssertionError("an unknown service was reported")
        except grpc.RpcError as e:
            expect(e.code() == grpc.StatusCode.NOT_FOUND, f"status {e.code()}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=("http", "grpc"), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--golden-dir", required=True)
    parser.add_argument("--list", action="store_true", help="print the names of the checks for the protocol and exit")
    args = parser.parse_args()
    names = [name for name, (protocols, _) in CHECKS.items() if args.protocol in protocols]
    if args.list:
        print(json.dumps(names))
        return
    ctx = Ctx(args.protocol, args.url, args.golden_dir)
    results = {}
    for name in names:
        try:
            CHECKS[name][1](ctx)
            results[name] = {"ok": True, "detail": ""}
        except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
            detail = f"{type(e).__name__}: {e}"
            if not isinstance(e, AssertionError):
                detail += "\n" + traceback.format_exc(limit=3)
            results[name] = {"ok": False, "detail": detail}
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
