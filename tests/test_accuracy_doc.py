"""docs/accuracy.md states exactly what the screening code computes now (scripts/accuracy_tables.py)."""

from __future__ import annotations

import difflib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("accuracy_tables", ROOT / "scripts" / "accuracy_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_accuracy_doc_numbers_are_what_the_code_computes() -> None:
    script = _script()
    doc = script.DOC.read_text(encoding="utf-8")
    blocks = script.compute()
    assert set(blocks) == set(script.BLOCKS)
    expected = script.render(doc, blocks)
    diff = "".join(difflib.unified_diff(doc.splitlines(True), expected.splitlines(True), "docs", "code"))
    assert not diff, "docs/accuracy.md is out of date (python scripts/accuracy_tables.py):\n" + diff


def test_every_table_of_the_doc_is_generated() -> None:
    # A table outside a generated block would be a number nobody recomputes.
    script = _script()
    doc = script.DOC.read_text(encoding="utf-8")
    outside = script._BLOCK.sub("", doc)
    assert "|---" not in outside
