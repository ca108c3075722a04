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
# the same portable build settings as pyproject.toml's [tool.uv] (given again: `uv pip` reads
# only the [tool.uv.pip] table)
"$UV" pip install --python .venv-latest/bin/python --upgrade --no-binary llama-cpp-python \
  --config-settings-package llama-cpp-python:cmake.define.GGML_NATIVE=OFF \
  --config-settings-package llama-cpp-python:cmake.define.LLAVA_BUILD=OFF \
  -e ".[local,dev]"

echo "--- newer than uv.lock:"
"$UV" export --quiet --frozen --all-extras --no-hashes --no-header --no-emit-project \
  --no-annotate | sed -n 's/^\([A-Za-z0-9_.-]*\)==\([^ ;]*\).*/\L\1\E \2/p' | sort -u > .venv-latest/locked.txt
"$UV" pip freeze --python .venv-latest/bin/python --exclude-editable \
  | sed -n 's/^\([A-Za-z0-9_.-]*\)==\(.*\)$/\L\1\E \2/p' | sort -u > .venv-latest/latest.txt
join -a2 -e - -o 0,1.2,2.2 <(tr _ - < .venv-latest/locked.txt | sort) \
  <(tr _ - < .venv-latest/latest.txt | sort) | awk '$2 != $3 {print "  " $1 ": " $2 " -> " $3}'
echo "---"
exec .venv-latest/bin/python -m pytest -p no:cacheprovider "$@"
