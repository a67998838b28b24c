# Debian's headless Chromium shell, which the HTML drift-report tests drive through playwright-core
# (pointed at this binary; nothing downloads a browser).
ensure_chromium() {
  apt_install chromium-headless-shell
  local bin
  bin="$(chromium_headless_shell_path)"
  [[ -x $bin ]] || { echo "[setup] chromium-headless-shell binary not found after install (dpkg -L chromium-headless-shell)" >&2; return 1; }
  setup_say "chromium: $bin"
}

chromium_headless_shell_path() {
  local candidate=/usr/lib/chromium/chromium-headless-shell
  if [[ -x $candidate ]]; then
    echo "$candidate"
  else
    dpkg -L chromium-headless-shell 2>/dev/null | grep -E '/chromium-headless-shell$' | head -n 1
  fi
}
