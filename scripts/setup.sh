#!/usr/bin/env bash
# Set up everything streamer needs, from nothing, idempotently, exactly as locked:
#   scripts/setup.sh          the server with the embedded model (a virtualenv in .venv)
#   scripts/setup.sh --test   ... plus the test tools, Debian's chromium and the Node test packages
#
# Python packages come only from uv.lock (exact versions, every file's sha256 checked):
# `uv sync --frozen` installs what it says and removes what it does not. uv itself is
# bootstrapped into .tools/ from scripts/uv-requirements.txt, also pinned with hashes.
#
# llama-cpp-python ships only a source distribution, and a build for the native CPU segfaults
# while generating on CPUs with AMX. pyproject.toml ([tool.uv]) makes every build of it
# portable (GGML_NATIVE=OFF, as config settings, which are part of uv's key for its cached
# builds). The first build takes ~7 minutes on 2 cores; uv keeps the wheel in its cache
# (~/.cache/uv), so later setups, and other checkouts, take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TEST=0
[ "${1:-}" = "--test" ] && WITH_TEST=1

PYTHON=${PYTHON:-python3}
TOOLS=.tools
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"  # the same, for any build outside uv
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
apt_install() {
  local SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if [ "$WITH_TEST" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  say "installing Debian's chromium (browser tests)"
  apt_install chromium
fi

if [ "$WITH_TEST" = 1 ]; then
  if ! command -v npm >/dev/null 2>&1; then
    say "installing Debian's nodejs and npm (the Node tests read with the real ai package)"
    apt_install nodejs npm
  fi
  # npm ci again whenever the lockfile changed since the last install (a stamp holds its hash)
  lock_sum=$(sha256sum tests/node/package-lock.json | cut -d' ' -f1)
  if [ "$(cat tests/node/node_modules/.streamer-lock 2>/dev/null)" != "$lock_sum" ]; then
    say "installing the npm packages for tests (tests/node, from its lockfile)"
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" > tests/node/node_modules/.streamer-lock
  fi
fi

uv_wanted=$(sed -n 's/^uv==\([^ ]*\).*/\1/p' scripts/uv-requirements.txt)
if [ "$("$TOOLS/bin/uv" --version 2>/dev/null | cut -d' ' -f2)" != "$uv_wanted" ]; then
  say "bootstrapping uv $uv_wanted into $TOOLS (hash-checked)"
  rm -rf "$TOOLS"
  "$PYTHON" -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install -q --disable-pip-version-check --require-hashes \
    --no-deps -r scripts/uv-requirements.txt
fi

EXTRAS=(--extra local)
[ "$WITH_TEST" = 1 ] && EXTRAS+=(--extra dev)
say "installing streamer (extras: ${EXTRAS[*]}) from uv.lock into .venv; a first build of llama-cpp-python takes minutes, once"
UV_PROJECT_ENVIRONMENT=.venv "$TOOLS/bin/uv" sync --frozen --python "$PYTHON" "${EXTRAS[@]}"
say "ready"
