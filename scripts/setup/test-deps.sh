#!/usr/bin/env bash
# Installs (idempotently) everything the test suite needs on a Debian machine, then exits.
# `npm test` runs it first; it is fast when everything is already in place.
#
# Each component lives in scripts/setup/components/NAME.sh and defines `ensure_NAME`;
# this script sources them all and runs each ensure function in file-name order.
# A component that cannot be installed says which piece is missing and how to get it.
# Knobs: INFERD_SETUP_SKIP="kafka seaweedfs" skips components by name.
set -euo pipefail

SETUP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SETUP_CACHE="${INFERD_SETUP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/inferd/setup}"
mkdir -p "$SETUP_CACHE"
export SETUP_ROOT SETUP_CACHE

# shellcheck source=scripts/setup/lib.sh
source "$SETUP_ROOT/scripts/setup/lib.sh"

for component in "$SETUP_ROOT"/scripts/setup/components/*.sh; do
  # shellcheck disable=SC1090
  source "$component"
done

for component in "$SETUP_ROOT"/scripts/setup/components/*.sh; do
  name="$(basename "$component" .sh)"
  if [[ " ${INFERD_SETUP_SKIP:-} " == *" $name "* ]]; then
    setup_say "$name: skipped (INFERD_SETUP_SKIP)"
    continue
  fi
  "ensure_${name//-/_}"
done
