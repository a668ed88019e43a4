"""Layering the linter cannot see: no module imports another module's private (``_name``) names.

(import-linter, run by ``lint-imports`` from pyproject.toml, checks the layers, independent siblings, import cycles
between sibling modules and private *modules*.) Scanned: the package, the examples and this test suite.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted([*(ROOT / "spikeseq").rglob("*.py"), *(ROOT / "examples").rglob("*.py")])


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def private_name_imports(path: Path) -> list[str]:
    """``"file:line: ..."`` for each ``from X import _y`` where ``_y`` is a name (not a private submodule) and for
    each ``alias._y`` attribute read on an imported spikeseq module."""
    tree = ast.parse(path.read_text(), str(path))
    rel = path.relative_to(ROOT)
    out = []
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("spikeseq"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if _is_module(full):
                    modules.add(a.asname or a.name)
                elif a.name.startswith("_") and not a.name.startswith("__"):
                    out.append(f"{rel}:{node.lineno}: imports private name {a.name} from {node.module}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("spikeseq") and a.asname:
                    modules.add(a.asname)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            out.append(f"{rel}:{node.lineno}: reads private name {node.value.id}.{node.attr}")
    return out


def test_there_are_files():
    assert len(FILES) > 50


@pytest.mark.parametrize("area", ["spikeseq", "examples"])
def test_no_private_names_cross_modules(area):
    bad = [o for f in FILES if f.relative_to(ROOT).parts[0] == area for o in private_name_imports(f)]
    assert not bad, "\n".join(bad)


def test_the_check_finds_private_names(tmp_path):
    f = ROOT / "spikeseq" / "__probe_private_names__.py"
    src = ("from spikeseq.export.loihi import write_net, _qgraph\nfrom spikeseq.kernels import _native\n"
           "from spikeseq.profile import report as rep\nx = rep._fmt_pj\n")
    tmp = tmp_path / "probe.py"
    tmp.write_text(src)
    f.write_text(src)
    try:
        got = private_name_imports(f)
    finally:
        f.unlink()
    assert any("imports private name _qgraph" in g for g in got)
    assert any("reads private name rep._fmt_pj" in g for g in got)
    assert not any("_native" in g for g in got)
