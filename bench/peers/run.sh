#!/usr/bin/env bash
# Side-by-side comparison of inferd with other ways of serving the same ONNX models on this
# machine. Writes bench/RESULTS.md. See bench/peers/README.md.
#
#   [BC_LOAD=1,16,64] [MB_LOAD=1,8] bash bench/peers/run.sh [--quick] [--repeat N] [--only inferd,fastapi-1w,...] [--skip-install]
#                           [--into bench/peers/.results/<earlier run>]
#
# Peers: inferd, inferd-nobatch (breast_cancer with dynamic batching off), fastapi-1w,
# fastapi-2w, mlserver (parallel workers 0, 1, 2), triton, http-limit (Fastify), http-limit-node
# (node:http), raw-onnx. Every server runs alone on the machine in its turn and is driven by the
# same client (`inferd bench`) with the same load.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

QUICK=0
REPEAT=""
ONLY=""
INSTALL=1
INTO=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --repeat) REPEAT="$2"; shift ;;
    --only) ONLY="$2"; shift ;;
    --skip-install) INSTALL=0 ;;
    --into) INTO="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

PEERS=bench/peers
MODELS=${MODELS_DIR:-../shared/models}
# The Node flags `inferd` runs with as a command (its shebang), for `node <flags> bin/inferd.js`.
INFERD_NODE_FLAGS=$(sed -n '1s|^#!/usr/bin/env -S node ||p' bin/inferd.js)
WORK=$PEERS/.work
STAMP=$(date +%Y%m%d-%H%M%S)
# --into adds this run's rounds to an earlier run's results: the report takes medians over all.
RESULTS=${INTO:-$PEERS/.results/$STAMP}
VENV=$PEERS/.venv
TVENV=$PEERS/.venv-triton
BASE_PORT=${PEERS_BASE_PORT:-18600}
mkdir -p "$WORK" "$RESULTS"

if [ "$QUICK" = 1 ]; then
  WARMUP=500; WINDOW=1000; WINDOWS=2; REPEAT=${REPEAT:-1}; RAW_SECONDS=1
else
  WARMUP=2000; WINDOW=3000; WINDOWS=3; REPEAT=${REPEAT:-3}; RAW_SECONDS=3
fi
BC_LOAD=${BC_LOAD:-1,16,64}
MB_LOAD=${MB_LOAD:-1,8}

log() { printf '[peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
note() { printf '%s\t%s\n' "$1" "$2" >> "$RESULTS/notes.tsv"; }

for m in breast_cancer mobilenet_v2; do
  if [ ! -f "$MODELS/$m/1/model.onnx" ]; then echo "missing $MODELS/$m/1/model.onnx" >&2; exit 1; fi
done
MODELS_ABS=$(cd "$MODELS" && pwd)

BENCH=(node --import tsx "$PEERS/bench-cli.ts" bench --no-progress --warmup-ms "$WARMUP" --window-ms "$WINDOW" --windows "$WINDOWS")

# ---------------------------------------------------------------- environments
if [ "$INSTALL" = 1 ]; then
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  log "installing Python peers into $VENV"
  "$VENV/bin/pip" install -q --upgrade pip > /dev/null
  "$VENV/bin/pip" install -q -r "$PEERS/requirements.txt" > "$RESULTS/pip.log" 2>&1 || { log "pip failed, see $RESULTS/pip.log"; exit 1; }

  # Triton's in-process Python API is published on PyPI only as a placeholder that refuses to
  # install; record the attempt, then use the tritonserver binary that PyTriton's wheel bundles.
  log "trying the tritonserver wheel (in-process API)"
  if "$VENV/bin/pip" download -q --no-deps -d "$WORK/tritonserver-wheel" tritonserver > "$RESULTS/tritonserver-wheel.log" 2>&1 \
    && "$VENV/bin/pip" install --no-deps "$WORK"/tritonserver-wheel/tritonserver-* >> "$RESULTS/tritonserver-wheel.log" 2>&1; then
    note triton-api "the tritonserver wheel installed (unexpected): not used"
  else
    if grep -q 'correct way to install Triton Server' "$RESULTS/tritonserver-wheel.log"; then
      note triton-api "pip install tritonserver fails on purpose: the PyPI package is a placeholder whose build raises \"Currently, the correct way to install Triton Server In-Process Python API is using the wheels shipped in the NGC nightly containers\". Triton runs here from the tritonserver binary inside the nvidia-pytriton wheel (Python backend)."
    else
      note triton-api "pip install tritonserver failed: $(grep -m1 -E 'ERROR|error' "$RESULTS/tritonserver-wheel.log" | cut -c1-200)"
    fi
  fi
  if [ ! -x "$TVENV/bin/python" ]; then python3 -m venv "$TVENV"; fi
  "$TVENV/bin/pip" install -q --upgrade pip > /dev/null
  "$TVENV/bin/pip" install -q -r "$PEERS/requirements-triton.txt" > "$RESULTS/pip-triton.log" 2>&1 \
    || note triton "pip install nvidia-pytriton failed: $(tail -1 "$RESULTS/pip-triton.log")"
fi

node --import tsx "$PEERS/make-bodies.ts" "$WORK/bodies"

# ---------------------------------------------------------------- process handling
CURRENT_PID=""
cleanup() { [ -n "$CURRENT_PID" ] && stop_server "$CURRENT_PID"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts a server in its own process group, so that stopping it also stops its workers.
start_server() {
  local name=$1; shift
  # Other work on the machine skews figures: keep the load average seen as each server starts.
  printf '%s\t%s\n' "$name" "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RESULTS/loadavg.tsv"
  setsid "$@" > "$RESULTS/$name.log" 2>&1 < /dev/null &
  CURRENT_PID=$!
}

stop_server() {
  local pid=$1
  kill -TERM -- "-$pid" 2> /dev/null || return 0
  for _ in $(seq 1 50); do kill -0 -- "-$pid" 2> /dev/null || break; sleep 0.2; done
  kill -KILL -- "-$pid" 2> /dev/null
  wait "$pid" 2> /dev/null
  CURRENT_PID=""
}

wait_http() {
  local url=$1 seconds=${2:-120}
  for _ in $(seq 1 $((seconds * 4))); do
    if curl -sf -o /dev/null "$url"; then return 0; fi
    if [ -n "$CURRENT_PID" ] && ! kill -0 "$CURRENT_PID" 2> /dev/null; then return 1; fi
    sleep 0.25
  done
  return 1
}

load_for() { if [ "$1" = breast_cancer ]; then echo "$BC_LOAD"; else echo "$MB_LOAD"; fi; }

# bench_oip PEER MODEL URL ROUND
bench_oip() {
  local out="$RESULTS/$1__$2__r$4.json"
  "${BENCH[@]}" -m "$2" -u "$3" --concurrency-range "$(load_for "$2")" --json "$out" > "$RESULTS/$1__$2__r$4.txt" 2>&1 \
    || note "$1" "bench of $2 failed: $(tail -1 "$RESULTS/$1__$2__r$4.txt")"
  tail -n +2 "$RESULTS/$1__$2__r$4.txt" >&2
}

# bench_raw PEER MODEL URL ROUND: the FastAPI /predict route with its own body format.
bench_raw() {
  local out="$RESULTS/$1__$2__r$4.json"
  "${BENCH[@]}" --raw-url "$3/predict" --raw-body "$WORK/bodies/$2.predict.json" \
    --concurrency-range "$(load_for "$2")" --json "$out" > "$RESULTS/$1__$2__r$4.txt" 2>&1 \
    || note "$1" "bench of $2 failed: $(tail -1 "$RESULTS/$1__$2__r$4.txt")"
  tail -n +2 "$RESULTS/$1__$2__r$4.txt" >&2
}

# ---------------------------------------------------------------- peers
prepare_inferd() {
  local repo=$WORK/inferd-repo
  rm -rf "$repo"; mkdir -p "$repo/breast_cancer/1" "$repo/mobilenet_v2/1"
  ln -s "$MODELS_ABS/breast_cancer/1/model.onnx" "$repo/breast_cancer/1/model.onnx"
  ln -s "$MODELS_ABS/mobilenet_v2/1/model.onnx" "$repo/mobilenet_v2/1/model.onnx"
  cat > "$repo/breast_cancer/config.yaml" << 'EOF'
runtime: onnx
max_batch_size: 64
instances: 1
onnx: { intra_op_threads: 1, inter_op_threads: 1 }
inputs:
  - { name: features, datatype: FP32, shape: [-1, 30] }
outputs:
  - { name: probabilities, datatype: FP32, shape: [-1, 2] }
  - { name: label, datatype: INT64, shape: [-1] }
# Greedy batching: a free worker takes everything queued, so batches grow with load and a lone
# request never waits (inferd's timer resolution is 1 ms; Triton's 200 us delay has no match).
dynamic_batching: { max_queue_delay_microseconds: 0 }
queue: { max_size: 4096 }
EOF
  cat > "$repo/mobilenet_v2/config.yaml" << 'EOF'
runtime: onnx
max_batch_size: 8
instances: 1
onnx: { intra_op_threads: 2, inter_op_threads: 1 }
inputs:
  - { name: input, datatype: FP32, shape: [-1, 3, 224, 224] }
outputs:
  - { name: logits, datatype: FP32, shape: [-1, 1000] }
dynamic_batching: { max_queue_delay_microseconds: 0 }
queue: { max_size: 1024 }
EOF
  if [ ! -f dist/cli/index.js ] || [ -n "$(find src -name '*.ts' -newer dist/cli/index.js -print -quit)" ]; then
    log "building inferd"
    npm run build --silent > "$RESULTS/inferd-build.log" 2>&1 || { note inferd "npm run build failed: $(grep -m1 error "$RESULTS/inferd-build.log")"; return 1; }
  fi
}

run_inferd() {
  local r=$1 port=$BASE_PORT
  prepare_inferd || return 0
  log "inferd on :$port"
  start_server "inferd-r$r" node $INFERD_NODE_FLAGS bin/inferd.js serve --model-repository "$WORK/inferd-repo" --host 127.0.0.1 --port "$port" --grpc-port -1 --log-level warn
  if wait_http "http://127.0.0.1:$port/v2/models/mobilenet_v2/ready" 120; then
    for m in breast_cancer mobilenet_v2; do bench_oip inferd "$m" "http://127.0.0.1:$port" "$r"; done
  else
    note inferd "did not become ready: $(tail -3 "$RESULTS/inferd-r$r.log" | tr '\n' ' ' | cut -c1-300)"
  fi
  stop_server "$CURRENT_PID"
}

# The same server with breast_cancer's dynamic batching off: each request is its own run.
run_inferd_nobatch() {
  local r=$1 port=$((BASE_PORT + 5)) repo=$WORK/inferd-nobatch-repo
  prepare_inferd || return 0
  rm -rf "$repo"; mkdir -p "$repo"
  cp -r "$WORK/inferd-repo/breast_cancer" "$repo/"
  sed -i '/^dynamic_batching:/d' "$repo/breast_cancer/config.yaml"
  log "inferd-nobatch on :$port"
  start_server "inferd-nobatch-r$r" node $INFERD_NODE_FLAGS bin/inferd.js serve --model-repository "$repo" --host 127.0.0.1 --port "$port" --grpc-port -1 --log-level warn
  if wait_http "http://127.0.0.1:$port/v2/models/breast_cancer/ready" 120; then
    bench_oip inferd-nobatch breast_cancer "http://127.0.0.1:$port" "$r"
  else
    note inferd-nobatch "did not become ready: $(tail -3 "$RESULTS/inferd-nobatch-r$r.log" | tr '\n' ' ' | cut -c1-300)"
  fi
  stop_server "$CURRENT_PID"
}

run_fastapi() {
  local r=$1 workers=$2 name="fastapi-${2}w" port=$((BASE_PORT + 10))
  for m in breast_cancer mobilenet_v2; do
    log "$name ($m) on :$port"
    start_server "$name-$m-r$r" env PEER_MODEL="$m" PEER_MODEL_PATH="$MODELS_ABS/$m/1/model.onnx" \
      "$VENV/bin/uvicorn" fastapi_app:app --app-dir "$PEERS" --host 127.0.0.1 --port "$port" \
      --workers "$workers" --log-level warning --no-access-log
    if wait_http "http://127.0.0.1:$port/health" 120; then
      bench_raw "$name" "$m" "http://127.0.0.1:$port" "$r"
    else
      note "$name" "did not start: $(tail -3 "$RESULTS/$name-$m-r$r.log" | tr '\n' ' ' | cut -c1-300)"
    fi
    stop_server "$CURRENT_PID"
  done
}

prepare_mlserver() {
  local dir=$WORK/mlserver-$1
  rm -rf "$dir"; mkdir -p "$dir/breast_cancer" "$dir/mobilenet_v2"
  cat > "$dir/settings.json" << EOF
{ "debug": false, "parallel_workers": $1, "host": "127.0.0.1", "http_port": $((BASE_PORT + 20)),
  "grpc_port": $((BASE_PORT + 21)), "metrics_port": $((BASE_PORT + 22)), "load_models_at_startup": true,
  "metrics_dir": "$ROOT/$dir/.metrics" }
EOF
  cat > "$dir/breast_cancer/model-settings.json" << EOF
{ "name": "breast_cancer", "implementation": "onnx_runtime.OnnxModel",
  "max_batch_size": 64, "max_batch_time": 0.0002,
  "inputs": [{ "name": "features", "datatype": "FP32", "shape": [-1, 30] }],
  "outputs": [{ "name": "probabilities", "datatype": "FP32", "shape": [-1, 2] }, { "name": "label", "datatype": "INT64", "shape": [-1] }],
  "parameters": { "uri": "$MODELS_ABS/breast_cancer/1/model.onnx", "extra": { "intra_op_threads": 1 } } }
EOF
  cat > "$dir/mobilenet_v2/model-settings.json" << EOF
{ "name": "mobilenet_v2", "implementation": "onnx_runtime.OnnxModel",
  "max_batch_size": 8, "max_batch_time": 0.001,
  "inputs": [{ "name": "input", "datatype": "FP32", "shape": [-1, 3, 224, 224] }],
  "outputs": [{ "name": "logits", "datatype": "FP32", "shape": [-1, 1000] }],
  "parameters": { "uri": "$MODELS_ABS/mobilenet_v2/1/model.onnx", "extra": { "intra_op_threads": 2 } } }
EOF
}

run_mlserver() {
  local r=$1 workers=$2 name="mlserver-pw$2" port=$((BASE_PORT + 20))
  prepare_mlserver "$workers"
  log "$name on :$port"
  start_server "$name-r$r" env PYTHONPATH="$ROOT/$PEERS/mlserver" "$VENV/bin/mlserver" start "$WORK/mlserver-$workers"
  if wait_http "http://127.0.0.1:$port/v2/models/mobilenet_v2/ready" 180; then
    for m in breast_cancer mobilenet_v2; do bench_oip "$name" "$m" "http://127.0.0.1:$port" "$r"; done
  else
    note "$name" "did not become ready: $(tail -3 "$RESULTS/$name-r$r.log" | tr '\n' ' ' | cut -c1-300)"
  fi
  stop_server "$CURRENT_PID"
}

prepare_triton() {
  local site
  site=$(ls -d "$ROOT/$TVENV"/lib/python3*/site-packages 2> /dev/null | head -1)
  if [ -z "$site" ] || [ ! -x "$site/pytriton/tritonserver/bin/tritonserver" ]; then
    note triton "no tritonserver binary in $TVENV (nvidia-pytriton not installed)"
    return 1
  fi
  local pyver
  pyver=$("$TVENV/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  TRITON_DIR=$WORK/triton
  TRITON_SITE=$site
  rm -rf "$TRITON_DIR"; mkdir -p "$TRITON_DIR"
  # The server finds its backend stub next to the backend library, as PyTriton lays it out.
  cp -r "$site/pytriton/tritonserver" "$TRITON_DIR/server"
  rm -rf "$TRITON_DIR/server/python_backend_stubs"
  cp "$site/pytriton/tritonserver/python_backend_stubs/$pyver/triton_python_backend_stub" "$TRITON_DIR/server/backends/python/"
  for m in breast_cancer mobilenet_v2; do
    mkdir -p "$TRITON_DIR/repo/$m/1"
    cp "$PEERS/triton/model.py" "$TRITON_DIR/repo/$m/1/model.py"
    echo "$site" > "$TRITON_DIR/repo/$m/1/site_packages.txt"
  done
  cat > "$TRITON_DIR/repo/breast_cancer/config.pbtxt" << EOF
backend: "python"
max_batch_size: 64
input [ { name: "features", data_type: TYPE_FP32, dims: [ 30 ] } ]
output [
  { name: "probabilities", data_type: TYPE_FP32, dims: [ 2 ] },
  { name: "label", data_type: TYPE_INT64, dims: [ 1 ], reshape: { shape: [ ] } }
]
dynamic_batching { max_queue_delay_microseconds: 200 }
instance_group [ { kind: KIND_CPU, count: 1 } ]
parameters { key: "onnx_path", value: { string_value: "$MODELS_ABS/breast_cancer/1/model.onnx" } }
parameters { key: "intra_op_threads", value: { string_value: "1" } }
EOF
  cat > "$TRITON_DIR/repo/mobilenet_v2/config.pbtxt" << EOF
backend: "python"
max_batch_size: 8
input [ { name: "input", data_type: TYPE_FP32, dims: [ 3, 224, 224 ] } ]
output [ { name: "logits", data_type: TYPE_FP32, dims: [ 1000 ] } ]
dynamic_batching { max_queue_delay_microseconds: 1000 }
instance_group [ { kind: KIND_CPU, count: 1 } ]
parameters { key: "onnx_path", value: { string_value: "$MODELS_ABS/mobilenet_v2/1/model.onnx" } }
parameters { key: "intra_op_threads", value: { string_value: "2" } }
EOF
}

run_triton() {
  local r=$1 port=$((BASE_PORT + 30))
  prepare_triton || return 0
  log "triton on :$port"
  start_server "triton-r$r" env LD_LIBRARY_PATH="$TRITON_SITE/nvidia_pytriton.libs" \
    "$TRITON_DIR/server/bin/tritonserver" --model-repository="$TRITON_DIR/repo" \
    --backend-directory="$TRITON_DIR/server/backends" --cache-directory="$TRITON_DIR/server/caches" \
    --http-port="$port" --grpc-port="$((port + 1))" --metrics-port="$((port + 2))" --log-verbose=0
  if wait_http "http://127.0.0.1:$port/v2/models/mobilenet_v2/ready" 180; then
    for m in breast_cancer mobilenet_v2; do bench_oip triton "$m" "http://127.0.0.1:$port" "$r"; done
  else
    note triton "did not become ready: $(grep -m2 -E '^E|error' "$RESULTS/triton-r$r.log" | tr '\n' ' ' | cut -c1-300)"
  fi
  stop_server "$CURRENT_PID"
}

run_http_limit() {
  local r=$1 port=$((BASE_PORT + 40))
  log "http-limit on :$port"
  start_server "http-limit-r$r" node --import tsx "$PEERS/http-limit.ts" --port "$port"
  if wait_http "http://127.0.0.1:$port/v2/health/ready" 60; then
    for m in breast_cancer mobilenet_v2; do bench_oip http-limit "$m" "http://127.0.0.1:$port" "$r"; done
  else
    note http-limit "did not start: $(tail -3 "$RESULTS/http-limit-r$r.log" | tr '\n' ' ')"
  fi
  stop_server "$CURRENT_PID"
}

# The physical HTTP limit: node:http with no framework, same parse, constant answer.
run_http_limit_node() {
  local r=$1 port=$((BASE_PORT + 45))
  log "http-limit-node on :$port"
  start_server "http-limit-node-r$r" node --import tsx "$PEERS/http-limit.ts" --port "$port" --plain
  if wait_http "http://127.0.0.1:$port/v2/health/ready" 60; then
    for m in breast_cancer mobilenet_v2; do bench_oip http-limit-node "$m" "http://127.0.0.1:$port" "$r"; done
  else
    note http-limit-node "did not start: $(tail -3 "$RESULTS/http-limit-node-r$r.log" | tr '\n' ' ')"
  fi
  stop_server "$CURRENT_PID"
}

run_raw_onnx() {
  local r=$1
  log "raw onnxruntime-node"
  node --import tsx "$PEERS/raw-onnx.ts" --model "$MODELS/breast_cancer/1/model.onnx" --batches 1,4,16,64 \
    --threads 1,2 --seconds "$RAW_SECONDS" --json "$RESULTS/raw-onnx__breast_cancer__r$r.json" 2>&1 | tail -1 >&2
  node --import tsx "$PEERS/raw-onnx.ts" --model "$MODELS/mobilenet_v2/1/model.onnx" --batches 1,2,4,8 \
    --threads 1,2 --seconds "$RAW_SECONDS" --json "$RESULTS/raw-onnx__mobilenet_v2__r$r.json" 2>&1 | tail -1 >&2
}

# ---------------------------------------------------------------- rounds
# Peers take turns within each round, so that drift on a shared machine spreads over all of them.
for k in $(seq 1 "$REPEAT"); do
  r="$STAMP-$k"
  log "round $k/$REPEAT"
  want inferd && run_inferd "$r"
  want inferd-nobatch && run_inferd_nobatch "$r"
  want fastapi-1w && run_fastapi "$r" 1
  want fastapi-2w && run_fastapi "$r" 2
  for w in 0 1 2; do want mlserver && run_mlserver "$r" "$w"; done
  want triton && run_triton "$r"
  want http-limit && run_http_limit "$r"
  want http-limit-node && run_http_limit_node "$r"
  want raw-onnx && run_raw_onnx "$r"
done

echo "bash bench/peers/run.sh$([ "$QUICK" = 1 ] && echo ' --quick')$([ -n "$ONLY" ] && echo " --only $ONLY") (repeat $REPEAT, warm-up ${WARMUP} ms, ${WINDOWS} windows of ${WINDOW} ms)" >> "$RESULTS/commands.txt"
node --import tsx "$PEERS/report.ts" "$RESULTS" bench/RESULTS.md
log "wrote bench/RESULTS.md (raw results in $RESULTS)"
