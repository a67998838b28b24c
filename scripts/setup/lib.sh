# Helpers shared by the set-up components; sourced, not executed.

setup_say() {
  printf '[setup] %s\n' "$*"
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# apt_install PKG...: installs Debian packages that are missing, without starting their
# services (the tests start throwaway instances on their own ports).
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  if ! command -v apt-get >/dev/null; then
    echo "[setup] missing Debian packages: ${missing[*]} (no apt-get here: install them by hand)" >&2
    return 1
  fi
  setup_say "installing Debian packages: ${missing[*]}"
  local policy=/usr/sbin/policy-rc.d own_policy=0 rc=0 attempt
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    own_policy=1
  fi
  local apt_opts=(-o DPkg::Lock::Timeout=300 -q)
  # An apt list older than a day (or none) may not know the packages: refresh it first.
  if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]]; then
    for attempt in 1 2 3; do
      DEBIAN_FRONTEND=noninteractive as_root apt-get "${apt_opts[@]}" update && break
      [[ $attempt -eq 3 ]] && rc=1
      sleep 5
    done
  fi
  if [[ $rc -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive as_root apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" || rc=$?
  fi
  [[ $own_policy -eq 1 ]] && as_root rm -f "$policy"
  if [[ $rc -ne 0 ]]; then
    echo "[setup] could not install: ${missing[*]} (apt-get exit $rc)" >&2
    return "$rc"
  fi
}
