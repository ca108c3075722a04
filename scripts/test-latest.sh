#!/usr/bin/env bash
# The canary: build .venv-latest with the newest releases that pyproject.toml's ranges allow
# (ignoring uv.lock), show what differs from the lock, and run the whole suite on it. A
# breaking release is found here, on purpose, before a user's first install finds it.
# Extra arguments go to pytest (e.g. `scripts/test-latest.sh tests/test_openai_provider.py`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
UV=.tools/bin/uv
[ -x "$UV" ] || scripts/setup.sh --test
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"

rm -rf .venv-latest
"$UV" venv --quiet --python "$PYTHON" .venv-latest
# llama-cpp-python: setup's portable wheel if the newest release is the locked one, else a
# portable build of the newest sdist (--no-config: the settings are given here, as in setup.sh)
"$UV" pip install --no-config --python .venv-latest/bin/python --upgrade \
  --find-links "${XDG_CACHE_HOME:-$HOME/.cache}/streamer/wheels-portable" \
  --config-settings-package llama-cpp-python:cmake.define.GGML_NATIVE=OFF \
  --config-settings-package llama-cpp-python:cmake.define.LLAVA_BUILD=OFF \
  -e ".[local,dev]"

echo "--- releases that differ from the lock (.venv holds the lock for this Python):"
freeze() {
  "$UV" pip freeze --quiet --python "$1" --exclude-editable \
    | sed -n 's/^\([A-Za-z0-9_.-]*\)==\(.*\)$/\1 \2/p' | tr 'A-Z_' 'a-z-' | sort
}
join -a2 -e - -o 0,1.2,2.2 <(freeze .venv/bin/python) <(freeze .venv-latest/bin/python) \
  | awk '$2 != $3 {print "  " $1 ": " $2 " -> " $3; n++} END {if (!n) print "  none"}'
echo "---"
exec .venv-latest/bin/python -m pytest -p no:cacheprovider "$@"
