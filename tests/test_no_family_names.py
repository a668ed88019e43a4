"""Static check (AST): the infrastructure names no model family and the building blocks name no model.

Names come from the registry (family names, model names, the classes each family package defines), so a new
family is covered as soon as it registers. Docstrings and comments are free text and not checked; identifiers,
attributes, keyword names, imports and every other string constant are.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import re
import sys
from pathlib import Path

import pytest

from spikeseq.models import registry

PKG = Path(__file__).resolve().parents[1] / "spikeseq"
INFRASTRUCTURE = ("graph", "export", "profile", "train", "report", "bench", "cli.py", "verify")
BUILDING_BLOCKS = ("functional", "kernels", "nn")


def _family_names() -> tuple[set[str], set[str]]:
    """(family and model names, class names defined in family packages)."""
    names: set[str] = set()
    classes: set[str] = set()
    for fam in registry.families().values():
        names.add(fam.name)
        names.update(fam.builders)
        for mod_name, mod in list(sys.modules.items()):
            if mod is None or not (mod_name == fam.module or mod_name.startswith(fam.module + ".")):
                continue
            for obj in vars(mod).values():
                if inspect.isclass(obj) and obj.__module__.startswith(fam.module):
                    classes.add(obj.__name__)
    return names, classes


def _building_block_names() -> set[str]:
    """Lower-cased names of the building blocks (public names of ``spikeseq.nn`` / ``spikeseq.functional`` and the
    modules of ``functional``, ``kernels``, ``nn``): a family may share a cell's name (the EGRU family and the EGRU
    cell), and infrastructure that names the cell (``bench egru``) names a building block, not the family."""
    import spikeseq.functional as functional
    import spikeseq.nn as snn

    out = {n.lower() for mod in (functional, snn) for n in dir(mod) if not n.startswith("_")}
    for part in BUILDING_BLOCKS:
        out |= {p.stem.lower() for p in (PKG / part).rglob("*.py")} | {p.name.lower() for p in (PKG / part).iterdir()
                                                                       if p.is_dir()}
    return out


_BLOCKS = _building_block_names()
_MODEL_NAMES, _CLASS_NAMES = ({n for n in names if n.lower() not in _BLOCKS} for names in _family_names())
NAMES = sorted(_MODEL_NAMES | _CLASS_NAMES, key=len, reverse=True)


def _alternation(names: set[str]) -> str:
    return "|".join(map(re.escape, sorted(names, key=len, reverse=True)))


# Family and model names in any case ("l2mu", "L2MU_"); class names as written (a family's class ``Residual``
# must not flag the word "residual" in ``project_residual``).
PATTERN = re.compile(r"(?<![A-Za-z0-9])(?:(?i:" + _alternation(_MODEL_NAMES) + r")|" + _alternation(_CLASS_NAMES)
                     + r")(?![A-Za-z0-9])")


def _files(parts: tuple[str, ...]) -> list[Path]:
    out = []
    for p in parts:
        path = PKG / p
        if path.is_dir():
            out += sorted(path.rglob("*.py"))
        elif path.is_file():
            out.append(path)
    return out


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                    first.value.value, str):
                ids.add(id(first.value))
    # attribute docstrings (a bare string right after an assignment) are documentation too
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            for a, b in itertools.pairwise(body):
                if isinstance(a, (ast.Assign, ast.AnnAssign)) and isinstance(b, ast.Expr) and isinstance(
                        b.value, ast.Constant) and isinstance(b.value.value, str):
                    ids.add(id(b.value))
    return ids


def offences(path: Path) -> list[str]:
    """``"file:line: what"`` for every family module import and every family / model name used in code."""
    tree = ast.parse(path.read_text(), str(path))
    docs = _docstrings(tree)
    rel = path.relative_to(PKG.parent)
    found = []

    def hit(node: ast.AST, text: str, what: str) -> None:
        m = PATTERN.search(text)
        if m:
            found.append(f"{rel}:{getattr(node, 'lineno', '?')}: {what} {text!r} names {m.group(0)!r}")

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        else:
            mods = []
        for mod in mods:
            if mod.startswith("spikeseq.models") and mod not in ("spikeseq.models", "spikeseq.models.registry") \
                    and not mod.startswith("spikeseq.models.registry."):
                found.append(f"{rel}:{node.lineno}: imports the family module {mod}")
        if isinstance(node, ast.Name):
            hit(node, node.id, "name")
        elif isinstance(node, ast.Attribute):
            hit(node, node.attr, "attribute")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            hit(node, node.name, "definition")
        elif isinstance(node, ast.arg):
            hit(node, node.arg, "argument")
        elif isinstance(node, ast.keyword) and node.arg:
            hit(node, node.arg, "keyword")
        elif isinstance(node, ast.alias):
            hit(node, node.asname or node.name, "import")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            hit(node, node.value, "string")
    return found


def test_the_name_list_comes_from_the_registry():
    assert {"l2mu", "delay_snn", "rsnn", "L2MU", "DelaySNN", "LMUFormer"} <= set(NAMES)
    assert all(f.name in NAMES or f.name.lower() in _BLOCKS for f in registry.families().values())


@pytest.mark.parametrize("area", INFRASTRUCTURE + BUILDING_BLOCKS)
def test_no_family_name_in_infrastructure_or_building_blocks(area):
    files = _files((area,))
    assert files
    bad = [o for f in files for o in offences(f)]
    assert not bad, "family / model names in " + area + ":\n" + "\n".join(bad)


def test_the_check_finds_names(tmp_path):
    src = tmp_path / "spikeseq" / "x.py"
    src.parent.mkdir()
    src.write_text('"""About L2MU (docstring: allowed)."""\nfrom spikeseq.models.l2mu import L2MU\n'
                   'if model == "rsnn":\n    count_l2mu = 1  # L2MU in a comment is fine\n')
    global PKG
    old, PKG = PKG, tmp_path / "spikeseq"
    try:
        got = offences(src)
    finally:
        PKG = old
    assert len([g for g in got if "imports the family module spikeseq.models.l2mu" in g]) == 2
    assert any("string 'rsnn'" in g for g in got) and any("name 'count_l2mu'" in g for g in got)
    assert not any("docstring" in g or "comment" in g for g in got)
