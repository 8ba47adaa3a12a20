"""The architecture as the code must keep it (issue 14): layers declared for every module, registries
described once, and docs/architecture.md's "What to touch" lists naming files that exist.

The layering itself is checked by ``lint-imports`` in CI (``[tool.importlinter]`` in pyproject.toml);
these tests keep that contract and the document honest.
"""

from __future__ import annotations

import ast
import pkgutil
import re
import tomllib
from pathlib import Path

import pytest

import cartatlas
from cartatlas.knowledge import registries

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cartatlas"
DOC = ROOT / "docs" / "architecture.md"


def _layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["type"] == "layers")
    return [[name.strip().strip("()") for name in layer.split("|")] for layer in contract["layers"]]


def test_every_top_level_module_is_in_a_layer() -> None:
    """A module left out of the contract could import anything: each one must have its layer."""
    declared = {name for layer in _layers() for name in layer}
    present = {m.name for m in pkgutil.iter_modules(cartatlas.__path__)}
    assert present - declared == set(), "add these to a layer in pyproject.toml [tool.importlinter]"


def test_the_layers_name_no_module_twice() -> None:
    names = [name for layer in _layers() for name in layer]
    assert len(names) == len(set(names))


# -- registries ----------------------------------------------------------------------------------

#: A registry name compared in SQL: ``registry = 'ctgov'``, ``WHEN 'chictr' THEN``.
_SQL_REGISTRY = re.compile(
    r"\b(?:m_reg|registry(?:_[ab])?|reg)\s*(?:=|<>|!=)\s*'([a-z][a-z0-9]*)'|WHEN\s+'([a-z][a-z0-9]*)'\s+THEN"
)


def _is_registry(node: ast.AST) -> bool:
    if isinstance(node, ast.Name):
        return "reg" in node.id.lower()
    if isinstance(node, ast.Attribute):
        return "reg" in node.attr.lower()
    if isinstance(node, ast.Subscript):
        key = node.slice
        return isinstance(key, ast.Constant) and isinstance(key.value, str) and "registry" in key.value
    return False


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def registry_names_in(source: str) -> set[str]:
    """Registry names a module's code writes out: compared with, assigned to or passed as a registry,
    keys of a registry map, or compared in SQL."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
            if any(_is_registry(p) for p in parts):
                found.update(s for p in parts for s in _strings(p))
        elif isinstance(node, ast.keyword) and node.arg and "registry" in node.arg:
            found.update(_strings(node.value))
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and re.search(r"REGISTR(?:Y|IES)", t.id.upper()) for t in node.targets
        ):
            if isinstance(node.value, ast.Dict):
                found.update(s for k in node.value.keys if k is not None for s in _strings(k))
            else:
                found.update(_strings(node.value))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.update(m.group(1) or m.group(2) for m in _SQL_REGISTRY.finditer(node.value))
    return found


def test_the_scan_finds_registry_names_wherever_code_writes_them() -> None:
    source = """
REGISTRY = "alpha"
REGISTRY_NAMES = {"beta": "Beta"}
if registry == "gamma" or row["registry"] in ("delta", "epsilon"):
    record = RawRecord(registry="zeta")
SQL = "SELECT * FROM trials WHERE registry = 'eta' AND CASE m_reg WHEN 'theta' THEN 0 END"
other = "iota"
"""
    assert registry_names_in(source) == {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}


def test_code_names_only_the_registries_that_registries_csv_lists() -> None:
    """A registry is described in knowledge/registries.csv, and code that names one names a listed one."""
    known = set(registries.names())
    unknown: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for name in registry_names_in(path.read_text(encoding="utf-8")) - known:
            unknown.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert unknown == {}


def test_registries_csv_is_one_consistent_table() -> None:
    rows = registries.registries()
    names = [r.name for r in rows]
    assert len(names) == len(set(names))
    assert {"ctgov", "chictr", "euctr", "pubmed"} <= set(names)
    for r in rows:
        assert r.url_template.startswith("https://") and "{id}" in r.url_template, r.name
        assert r.records_in is None or r.records_in in names, r.name
        if r.id_pattern:
            re.compile(r.id_pattern)
    ranks = [r.precedence for r in rows if r.precedence is not None]
    assert sorted(ranks) == list(range(1, len(ranks) + 1))
    named: dict[str, set[str]] = {}
    for r in rows:
        for alias in r.aliases:
            named.setdefault(alias.casefold(), set()).add(r.name)
    assert {a: n for a, n in named.items() if len(n) > 1} == {}, "an ICTRP spelling may name one registry only"


def test_registry_facts_come_from_the_table() -> None:
    assert registries.precedence()[:4] == ("ctgov", "chictr", "euctr", "ctis")
    assert registries.cluster_id_registries() == ("ctgov", "chictr")
    assert registries.records_registry("eudract") == "euctr"
    assert registries.records_registry("umin") == "jprn"
    assert registries.display_name("ctis") == "EU CTIS"
    assert registries.display_name("newreg") == "NEWREG"
    assert registries.register_short_name("Chinese Clinical Trial Registry") == "chictr"
    assert registries.register_short_name(None, "EUCTR2020-001162-12-FR") == "euctr"
    assert registries.register_short_name(None, "UMIN000039686") == "jprn"
    assert registries.register_short_name("Some New Register", "X-1") == "somenewregister"


# -- the document ----------------------------------------------------------------------------------


def _what_to_touch() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## What to touch")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_what_to_touch_covers_the_four_changes() -> None:
    section = _what_to_touch()
    for kind in ("**A registry.**", "**A label**", "**A figure.**", "**A country group**"):
        assert kind in section


@pytest.mark.parametrize(
    "path",
    sorted(
        set(
            re.findall(
                r"`((?:cartatlas|tests|docs|scripts)/[\w./-]+)`",
                (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8"),
            )
        )
    ),
)
def test_files_the_architecture_names_exist(path: str) -> None:
    assert (ROOT / path).exists(), f"docs/architecture.md names {path}, which does not exist"


def test_names_the_what_to_touch_lists_use_exist() -> None:
    """Functions and constants the lists point at are where the lists say."""
    from cartatlas.classify import engine
    from cartatlas.report import figures, labels
    from cartatlas.sources import base, files

    assert hasattr(figures, "FIGURES") and hasattr(labels, "PLATFORM_LABELS")
    assert hasattr(labels, "PRODUCT_SOURCE_LABELS")
    assert hasattr(engine, "CLASSIFIER_VERSION")
    assert hasattr(base, "register_reader") and hasattr(files, "_load_builtin_readers")
    section = _what_to_touch()
    for name in ("FIGURES", "PLATFORM_LABELS", "CLASSIFIER_VERSION", "register_reader", "register_format"):
        assert name in section
