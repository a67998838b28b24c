# The Python virtual environment the tests use: the official KServe V2 clients (conformance)
# and the reference statistics libraries (parity tests). Packages: scripts/setup/requirements.txt.
ensure_python() {
  local venv="${TRITONCLIENT_VENV:-$SETUP_ROOT/.venv}"
  local py="$venv/bin/python" req="$SETUP_ROOT/scripts/setup/requirements.txt"
  local stamp_file="$venv/.inferd-requirements" stamp
  stamp="$(sha256sum "$req" | cut -c1-16)"
  if [[ -x $py && -f $stamp_file && "$(cat "$stamp_file")" == "$stamp" ]] && "$py" -c 'import sys' 2>/dev/null; then
    setup_say "python: venv up to date ($venv)"
    return 0
  fi
  command -v python3 >/dev/null || { echo "[setup] python3 is missing: apt-get install python3 python3-venv" >&2; return 1; }
  if [[ ! -x $py ]] || ! "$py" -c 'import sys' 2>/dev/null; then
    python3 -m venv --clear "$venv" || { echo "[setup] python3 -m venv failed: apt-get install python3-venv" >&2; return 1; }
  fi
  setup_say "python: installing $(grep -cv '^\s*#' "$req") packages into $venv"
  "$py" -m pip install --disable-pip-version-check --no-input -q -r "$req"
  echo "$stamp" >"$stamp_file"
}
