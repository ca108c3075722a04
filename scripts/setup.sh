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
# while generating on CPUs with AMX: we build it portable (GGML_NATIVE=OFF), from the sdist that
# uv.lock names (its sha256 checked), once per version, into our own wheel folder
# (~/.cache/streamer/wheels-portable), and install that wheel. ~7 minutes on 2 cores the first
# time; seconds after, in any checkout. (uv's own cache of built wheels is not enough: a
# registry that sends no caching headers makes uv fetch the sdist again, and then build again.)
# pyproject.toml's [tool.uv] holds the same build settings, for anyone who runs uv directly.
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
  # tmux drives the terminal client's tests; nginx fronts streamer in the deployment tests;
  # redis-server backs the redis engine's tests (each test starts its own, persistence off)
  missing=()
  command -v tmux >/dev/null 2>&1 || missing+=(tmux)
  [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian's ${missing[*]} (terminal and deployment tests)"
    apt_install "${missing[@]}"
  fi
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

# the portable llama-cpp-python wheel: built once from the locked, hash-checked sdist
LLAMA_SETTINGS=(-C cmake.define.GGML_NATIVE=OFF -C cmake.define.LLAVA_BUILD=OFF)  # = [tool.uv]
WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/streamer/wheels-portable"
read -r LLAMA_VERSION LLAMA_URL LLAMA_HASH < <("$PYTHON" -c '
import tomllib
(p,) = [p for p in tomllib.load(open("uv.lock", "rb"))["package"] if p["name"] == "llama-cpp-python"]
print(p["version"], p["sdist"]["url"], p["sdist"]["hash"].removeprefix("sha256:"))')
wheel=$(ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
  say "building llama-cpp-python $LLAMA_VERSION portably (GGML_NATIVE=OFF); takes minutes, once"
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  sdist="$build/$(basename "$LLAMA_URL")"
  "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
    "$LLAMA_URL" "$sdist"
  echo "$LLAMA_HASH  $sdist" | sha256sum --check --quiet
  mkdir -p "$WHEELS"
  "$TOOLS/bin/uv" build --quiet --python "$PYTHON" --wheel --out-dir "$build/out" \
    "${LLAMA_SETTINGS[@]}" "$sdist"
  mv "$build"/out/llama_cpp_python-*.whl "$WHEELS"/
  wheel=$(ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -n 1)
fi

EXTRAS=(--extra local)
[ "$WITH_TEST" = 1 ] && EXTRAS+=(--extra dev)
say "installing streamer (${EXTRAS[*]}) from uv.lock into .venv"
export UV_PROJECT_ENVIRONMENT=.venv
"$TOOLS/bin/uv" sync --frozen --python "$PYTHON" "${EXTRAS[@]}" \
  --no-install-package llama-cpp-python
"$TOOLS/bin/uv" pip install --quiet --no-config --python .venv/bin/python --no-deps "$wheel"
say "ready"
