"""``useStream`` (streamer/static/react.js) rendered by the real React (react-test-renderer,
from tests/node's lockfile) in Node, against a real server process over SSE."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).parents[1] / "node"
STATIC = Path(__file__).parents[2] / "streamer" / "static"
PROMPT = "# Hooked\n\nA *streamed* answer with `code`\n\n- one\n- two\n\n" + "More text. " * 40


def test_use_stream_renders_the_streamed_answer(server_process: Any) -> None:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "react-test-renderer").is_dir():
        pytest.fail("node and tests/node/node_modules are needed: `make test` installs them"
                    " (`cd tests/node && npm ci`)")
    result = subprocess.run([node, str(NODE_DIR / "use_stream_check.mjs"),
                             server_process.base_url, PROMPT],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["transport"] == "sse"
    assert out["final"] == out["completeHtml"] and "<em>streamed</em>" in out["final"]
    assert out["rendered"] == out["final"]  # what the component rendered last
    assert out["streamingRenders"] >= 2 and out["distinctHtml"] >= 3  # it rendered the stream
    assert out["closedState"] == "disconnected"  # unmounting closed the client


def test_react_is_no_dependency_of_the_package_or_the_bundle() -> None:
    package = json.loads((STATIC / "package.json").read_text())
    assert "react" not in package.get("dependencies", {})
    assert package["peerDependenciesMeta"]["react"] == {"optional": True}
    # no module of the package imports React (statically or dynamically): the app hands it in
    modules = [*STATIC.glob("*.js"), *(STATIC / "src").glob("*.js")]
    assert STATIC / "src" / "react.js" in modules
    for module in modules:
        code = "\n".join(line for line in module.read_text().splitlines()
                         if not line.lstrip().startswith("//"))  # the usage examples
        imports = re.findall(r"""(?:from|import)\s*\(?\s*['"]([^'"]+)['"]""", code)
        assert not [spec for spec in imports if "react" in spec.lower()
                    and not spec.startswith(".")], (module.name, imports)
    licenses = (STATIC / "vendor" / "THIRD_PARTY_LICENSES.txt").read_text()
    assert "\nreact@" not in licenses and "react-dom" not in licenses
