"""The tree is the pipeline: the pure stages import no I/O framework (an AST check).

Pure packages (``render``, ``log``, ``wire``, and the pacing and merge of ``delivery``) are
sans-IO, like h11 under httpcore: they import neither trio nor the web stack, and nothing
from the Trio layers above them (``runtime``, ``transports``, ``web``), so they are tested
without a clock and reused by any shell.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "streamer"

#: the pure modules: every .py under these paths (those that exist; render always does)
PURE = ("render", "log", "wire", "delivery/pacer.py", "delivery/merge.py")
#: what a pure module may not import: I/O frameworks and the layers that run on them
FORBIDDEN = ("trio", "trio_websocket", "quart", "quart_trio", "hypercorn", "anyio", "httpx",
             "sqlite3", "streamer.runtime", "streamer.transports", "streamer.web",
             "streamer.server", "streamer.persistence", "streamer.providers", "streamer.clients")


def pure_files() -> list[Path]:
    files: list[Path] = []
    for entry in PURE:
        path = PACKAGE / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else []
    return files


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])


def imports(path: Path, package: str) -> set[str]:
    """Absolute names of what the module at ``path`` (in ``package``) imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the module's package
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
    return names


def forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)


def test_the_render_stage_exists_and_is_checked() -> None:
    assert (PACKAGE / "render") in {p.parent for p in pure_files()}


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_pure_modules_import_no_io_framework(path: Path) -> None:
    bad = sorted(name for name in imports(path, package_of(path)) if forbidden(name))
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import trio.lowlevel\nfrom ..runtime import session\nfrom . import ops\n")
    found = imports(sample, "streamer.render")  # as if it lay in streamer/render/
    assert found == {"trio.lowlevel", "streamer.runtime", "streamer.render"}
    assert [forbidden(n) for n in sorted(found)] == [False, True, True]


#: the house's size rules (issue 13): a module or function past them has more than one job
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60
#: ``# size: hot loop`` on a def line exempts that one function (a split would cost calls per delta)
EXEMPT = "# size: hot loop"


def oversized(path: Path) -> list[str]:
    text = path.read_text()
    lines = text.splitlines()
    found = [f"module: {len(lines)} lines"] if len(lines) > MAX_MODULE_LINES else []
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            if size > MAX_FUNCTION_LINES and EXEMPT not in lines[node.lineno - 1]:
                found.append(f"{node.name}: {size} lines")
    return found


def test_no_module_over_600_lines_and_no_function_over_60() -> None:
    report = {str(p.relative_to(PACKAGE)): bad for p in sorted(PACKAGE.rglob("*.py"))
              if (bad := oversized(p))}
    assert not report, report


def test_the_size_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    sample = tmp_path / "sample.py"
    sample.write_text(f"def long():\n{body}\n\ndef hot():  {EXEMPT}\n{body}")
    assert oversized(sample) == [f"long: {MAX_FUNCTION_LINES + 1} lines"]
