# Debian packages whose binaries the tests run as throwaway instances on their own ports:
# PostgreSQL (registry store), Redis (rate limits, cache, batch jobs), Prometheus and
# promtool (rules and scrape tests).
ensure_system() {
  apt_install postgresql redis-server prometheus
  local pgbin
  pgbin="$(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n 1)"
  [[ -x $pgbin ]] || { echo "[setup] postgres binary not found after install" >&2; return 1; }
  setup_say "system: $("$pgbin" --version), $(redis-server --version | cut -d' ' -f1-3), $(prometheus --version 2>&1 | head -n 1 | cut -d' ' -f1-3)"
}
