# SeaweedFS: a real S3-compatible object store the storage tests start on the loopback.
# Built from its Go module (fetched through the Go module proxy); `go install` refuses the
# module because its go.mod has replace directives, so the module directory is copied out of
# the read-only module cache and built there. The binary is cached under $SETUP_CACHE.
SEAWEEDFS_VERSION="${INFERD_SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"

ensure_seaweedfs() {
  local dir="$SETUP_CACHE/seaweedfs"
  local bin="$dir/weed" stamp="$dir/weed.version"
  if [[ -x $bin && -f $stamp && "$(cat "$stamp")" == "$SEAWEEDFS_VERSION" ]]; then
    setup_say "seaweedfs: binary in place ($bin, $SEAWEEDFS_VERSION)"
    return 0
  fi
  command -v go >/dev/null || { echo "[setup] seaweedfs needs the Go toolchain (go 1.24+): apt-get install golang-go or install Go" >&2; return 1; }
  mkdir -p "$dir"
  setup_say "seaweedfs: downloading github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION from the Go module proxy"
  local module_dir
  module_dir="$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  if [[ -z $module_dir || ! -d $module_dir ]]; then
    echo "[setup] seaweedfs: go mod download did not return a module directory" >&2
    return 1
  fi
  local src="$dir/src"
  rm -rf "$src"
  cp -r "$module_dir" "$src"
  chmod -R u+w "$src"
  setup_say "seaweedfs: building weed (several minutes on a small machine)"
  (cd "$src" && GOFLAGS=-mod=mod go build -o "$bin.partial" ./weed) || {
    echo "[setup] seaweedfs: go build ./weed failed (see output above)" >&2
    return 1
  }
  mv "$bin.partial" "$bin"
  echo "$SEAWEEDFS_VERSION" >"$stamp"
  rm -rf "$src"
  setup_say "seaweedfs: built $("$bin" version 2>/dev/null | head -n 1)"
}
