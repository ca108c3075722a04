#!/usr/bin/env bash
# Refresh the lock (uv.lock) and the hash-pinned uv bootstrap (scripts/uv-requirements.txt).
#   scripts/lock.sh            after editing pyproject.toml: resolve what changed, keep every
#                              other pin (`uv lock`)
#   scripts/lock.sh --upgrade  move every pin to the newest release pyproject.toml allows
# Then run `make test` (it installs exactly the new lock) and commit both files together.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .tools/bin/uv ] || scripts/setup.sh
UV=.tools/bin/uv
if [ "${1:-}" = "--upgrade" ]; then
  "$UV" lock --upgrade
else
  "$UV" lock
fi
# the bootstrap pins the uv release that the lock holds (the `dev` extra's uv)
uv_locked=$(awk '/^name = "uv"$/ {getline; gsub(/"/, "", $3); print $3; exit}' uv.lock)
echo "uv==$uv_locked" | "$UV" pip compile --universal --generate-hashes --no-header \
  --quiet - -o scripts/uv-requirements.txt
git --no-pager diff --stat -- uv.lock scripts/uv-requirements.txt || true
