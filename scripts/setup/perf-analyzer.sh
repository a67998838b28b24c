#!/usr/bin/env bash
# Installs (idempotently) Triton's perf_analyzer for the benches, then prints the path of a
# wrapper that runs it. Not part of the test set-up: only bench/small and bench/protocols use it.
#
# The binary ships inside the tritonclient manylinux wheel on PyPI
# (tritonclient-VERSION.data/data/bin/perf_analyzer). It links against libb64 (Debian's
# libb64-0d) and libcudart.so.12, taken from the nvidia-cuda-runtime-cu12 wheel; no GPU is
# needed. Both wheels are unpacked under $SETUP_CACHE/perf-analyzer; the wrapper sets
# LD_LIBRARY_PATH and execs the binary.
#
#   PA="$(bash scripts/setup/perf-analyzer.sh)" && "$PA" --version
#
# Knobs: INFERD_TRITONCLIENT_VERSION (default 2.41.0), INFERD_CUDART_VERSION (default 12.3.101).
set -euo pipefail

SETUP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SETUP_CACHE="${INFERD_SETUP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/inferd/setup}"
# shellcheck source=scripts/setup/lib.sh
source "$SETUP_ROOT/scripts/setup/lib.sh"

TRITONCLIENT_VERSION="${INFERD_TRITONCLIENT_VERSION:-2.41.0}"
CUDART_VERSION="${INFERD_CUDART_VERSION:-12.3.101}"
dir="$SETUP_CACHE/perf-analyzer"
wrapper="$dir/perf_analyzer"
stamp="$dir/version"
want="tritonclient $TRITONCLIENT_VERSION, nvidia-cuda-runtime-cu12 $CUDART_VERSION"

# Progress goes to stderr: stdout carries only the wrapper's path.
say() { setup_say "$@" >&2; }

apt_install libb64-0d >&2

if [[ -x $wrapper && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  say "perf_analyzer: in place ($want)"
  echo "$wrapper"
  exit 0
fi

pip=()
if command -v pip3 >/dev/null; then pip=(pip3)
elif command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then pip=(python3 -m pip)
else
  echo "[setup] perf_analyzer: needs pip (apt-get install python3-pip) to download the wheels" >&2
  exit 1
fi
command -v unzip >/dev/null || apt_install unzip >&2

mkdir -p "$dir"
work="$(mktemp -d "$dir/download.XXXXXX")"
trap 'rm -rf "$work"' EXIT

say "perf_analyzer: downloading the tritonclient $TRITONCLIENT_VERSION and nvidia-cuda-runtime-cu12 $CUDART_VERSION wheels from PyPI"
# The wheels are fetched for a fixed platform and Python so the local interpreter does not matter.
"${pip[@]}" download --quiet --no-deps --only-binary=:all: --platform manylinux1_x86_64 --platform manylinux2014_x86_64 \
  --python-version 3.11 --dest "$work" "tritonclient==$TRITONCLIENT_VERSION" "nvidia-cuda-runtime-cu12==$CUDART_VERSION" >&2

unzip -q -o "$work"/tritonclient-*.whl "tritonclient-$TRITONCLIENT_VERSION.data/data/bin/perf_analyzer" -d "$work/triton"
unzip -q -o "$work"/nvidia_cuda_runtime_cu12-*.whl 'nvidia/cuda_runtime/lib/libcudart.so.12' -d "$work/cudart"
mkdir -p "$dir/bin" "$dir/lib"
install -m 755 "$work/triton/tritonclient-$TRITONCLIENT_VERSION.data/data/bin/perf_analyzer" "$dir/bin/perf_analyzer"
install -m 644 "$work/cudart/nvidia/cuda_runtime/lib/libcudart.so.12" "$dir/lib/libcudart.so.12"

cat >"$wrapper" <<WRAPPER
#!/bin/sh
# perf_analyzer with the CUDA runtime it links against (no GPU needed).
LD_LIBRARY_PATH="$dir/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$dir/bin/perf_analyzer" "\$@"
WRAPPER
chmod 755 "$wrapper"

if ! "$wrapper" --version >/dev/null 2>&1 && ! "$wrapper" --help >/dev/null 2>&1; then
  missing="$(LD_LIBRARY_PATH="$dir/lib" ldd "$dir/bin/perf_analyzer" | grep 'not found' || true)"
  echo "[setup] perf_analyzer: the binary does not start${missing:+; missing libraries: $missing}" >&2
  exit 1
fi
echo "$want" >"$stamp"
say "perf_analyzer: installed ($want)"
echo "$wrapper"
