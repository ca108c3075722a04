#!/usr/bin/env bash
# Set up everything streamer needs, from nothing, idempotently:
#   scripts/setup.sh          the server with the embedded model (a virtualenv in .venv)
#   scripts/setup.sh --test   ... plus the test tools and Debian's chromium for browser tests
#
# llama-cpp-python ships only a source distribution. A plain `pip install` compiles it for the
# native CPU, and on CPUs with AMX that build segfaults while generating. We always build it
# portable (CMAKE_ARGS="-DGGML_NATIVE=OFF", ~6.5 min on 2 cores) into our own wheel folder,
# keyed by those flags, and install only that wheel, so pip's cache can never hand back a
# native build.
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TEST=0
[ "${1:-}" = "--test" ] && WITH_TEST=1

PYTHON=${PYTHON:-python3}
LLAMA_VERSION=0.3.36
WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/streamer/wheels-portable"
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [ "$WITH_TEST" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  say "installing Debian's chromium (browser tests)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

if [ "$WITH_TEST" = 1 ]; then
  if ! command -v npm >/dev/null 2>&1; then
    say "installing Debian's nodejs and npm (the AI SDK test reads with the real ai package)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
  fi
  # npm ci again whenever the lockfile changed since the last install (a stamp holds its hash)
  lock_sum=$(sha256sum tests/node/package-lock.json | cut -d' ' -f1)
  if [ "$(cat tests/node/node_modules/.streamer-lock 2>/dev/null)" != "$lock_sum" ]; then
    say "installing the npm packages for tests (tests/node: ai, react; from its lockfile)"
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" > tests/node/node_modules/.streamer-lock
  fi
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv
fi
VENV_PY=.venv/bin/python
$VENV_PY -m pip install -q --upgrade pip setuptools wheel

mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  say "building llama-cpp-python $LLAMA_VERSION portably (CMAKE_ARGS=$CMAKE_ARGS); takes minutes, once"
  $VENV_PY -m pip wheel -q --no-deps --no-binary llama-cpp-python --no-cache-dir \
    -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
fi

EXTRAS="local"
[ "$WITH_TEST" = 1 ] && EXTRAS="local,dev"
say "installing streamer[$EXTRAS]"
$VENV_PY -m pip install -q --find-links "$WHEELS" --only-binary llama-cpp-python \
  "llama-cpp-python==$LLAMA_VERSION" -e ".[$EXTRAS]"
say "ready"
