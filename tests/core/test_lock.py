"""The lock: ``uv.lock`` holds exactly what ``pyproject.toml`` asks for, so drift cannot land.

``uv lock --check`` (uv's own check, offline) fails when the lock was resolved from other
requirements than the ones in ``pyproject.toml``; the second test shows that it does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).parent / "uv"  # the `dev` extra's uv, pinned by the lock itself


def lock_check(project: Path) -> subprocess.CompletedProcess[str]:
    assert UV.exists(), f"{UV} is missing: set up with `scripts/setup.sh --test`"
    # offline and without uv's cache: nothing to wait for (a concurrent build holds the cache's
    # lock), and a lock that no longer matches must be re-resolved, which cannot succeed here
    return subprocess.run([str(UV), "lock", "--check", "--offline", "--no-cache", "--no-progress",
                           "--project", str(project)],
                          capture_output=True, text=True, timeout=120, check=False)


def locked_version(name: str) -> str:
    match = re.search(rf'^name = "{re.escape(name)}"\nversion = "([^"]+)"',
                      (ROOT / "uv.lock").read_text(), re.M)
    assert match, name
    return match[1]


def test_the_lock_matches_pyproject() -> None:
    result = lock_check(ROOT)
    assert result.returncode == 0, result.stderr


def test_a_pyproject_change_the_lock_does_not_reflect_fails(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    assert lock_check(tmp_path).returncode == 0  # the copy alone still matches
    pyproject = (tmp_path / "pyproject.toml").read_text()
    assert '"openai>=' in pyproject
    # a lower bound above the locked release: the lock no longer satisfies pyproject
    changed = re.sub(r'"openai>=[^"]*"', f'"openai>{locked_version("openai")}"', pyproject)
    (tmp_path / "pyproject.toml").write_text(changed)
    result = lock_check(tmp_path)
    assert result.returncode != 0
    # a dependency added without relocking
    (tmp_path / "pyproject.toml").write_text(
        pyproject.replace('"anthropic>=', '"sniffio>=1", "anthropic>=', 1))
    assert lock_check(tmp_path).returncode != 0


def test_the_uv_bootstrap_is_the_locked_uv() -> None:
    pinned = (ROOT / "scripts" / "uv-requirements.txt").read_text()
    assert f"uv=={locked_version('uv')} " in pinned and "--hash=sha256:" in pinned
