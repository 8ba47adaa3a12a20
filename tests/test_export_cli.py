"""Exports and the CLI, driven the way a user drives them."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import cartatlas
from cartatlas.cli import app
from cartatlas.store.schema import TRIAL_COLUMNS
from tests.conftest import CTGOV

LEUKEMIA = CTGOV / "api_v2" / "leukemia_query_100.json"
runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "cli.duckdb"
    with cartatlas.open(path) as atlas:
        atlas.import_files([LEUKEMIA])
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "xlsx"])
def test_export_writes_one_row_per_trial_ids_first(db: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"trials.{fmt}"
    result = runner.invoke(app, ["export", "--db", str(db), "--format", fmt, "--out", str(out)])
    assert result.exit_code == 0, result.output
    if fmt == "csv":
        with out.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        header = list(rows[0])
    elif fmt == "jsonl":
        objs = [json.loads(line) for line in out.read_text().splitlines()]
        rows, header = objs, list(objs[0])  # type: ignore[assignment]
    elif fmt == "parquet":
        df = pd.read_parquet(out)
        rows, header = df.to_dict("records"), list(df.columns)  # type: ignore[assignment]
    else:
        df = pd.read_excel(out)
        rows, header = df.to_dict("records"), list(df.columns)  # type: ignore[assignment]
    assert header[:2] == ["trial_id", "registry"]
    assert header[: len(TRIAL_COLUMNS)] == TRIAL_COLUMNS
    assert len(rows) == 100
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary file's private mode
    assert len({r["trial_id"] for r in rows}) == 100
    if fmt == "jsonl":
        lbs = next(r for r in rows if r["trial_id"] == "NCT05756322")
        assert lbs["phases"] == ["PHASE1", "PHASE2"]
        assert lbs["sites"][3]["country_code"] == "TW"
    if fmt == "csv":
        lbs = next(r for r in rows if r["trial_id"] == "NCT05756322")
        assert lbs["phases"] == "PHASE1; PHASE2"
        assert json.loads(lbs["sites"])[0]["city"] == "Wollongong"
    assert not list(tmp_path.glob(".trials.*"))  # no temporary left behind


def test_export_unknown_format_is_refused(db: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "--db", str(db), "--format", "xml", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0
    assert not (tmp_path / "x").exists()


def test_import_exit_status_says_whether_anything_was_rejected(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    ok = runner.invoke(app, ["import", "--db", str(db), str(LEUKEMIA)])
    assert ok.exit_code == 0, ok.output
    assert "100 new" in ok.output
    bad = tmp_path / "bad.json"
    bad.write_text('[{"protocolSection": {}}]')
    result = runner.invoke(app, ["import", "--db", str(db), str(bad)])
    assert result.exit_code == 1
    assert "bad.json" in result.output and "no NCT id" in result.output


def test_db_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "env.duckdb"
    monkeypatch.setenv("CARTATLAS_DB", str(db))
    assert runner.invoke(app, ["import", str(LEUKEMIA)]).exit_code == 0
    assert db.exists()
    result = runner.invoke(app, ["summary", "--json"])
    assert result.exit_code == 0
    summary = json.loads(result.output)
    assert summary["trials"][0]["trials"] == 100


def test_sql_and_versions_commands(db: Path) -> None:
    result = runner.invoke(
        app, ["sql", "--db", str(db), "--format", "csv", "SELECT count(*) AS n FROM trials WHERE registry = 'ctgov'"]
    )
    assert result.exit_code == 0 and result.output.strip().splitlines() == ["n", "100"]
    result = runner.invoke(app, ["versions", "--db", str(db), "NCT05756322"])
    assert result.exit_code == 0 and "ctgov_v2" in result.output
    missing = runner.invoke(app, ["versions", "--db", str(db), "NCT00000000"])
    assert missing.exit_code != 0


def test_every_command_has_help_and_a_readme_entry() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for command in app.registered_commands:
        name = command.name or ""
        assert command.callback is not None and (command.callback.__doc__ or "").strip(), name
        assert f"cartatlas {name}" in readme, f"README lacks `cartatlas {name}`"
    for group in app.registered_groups:
        assert f"cartatlas {group.name}" in readme, f"README lacks `cartatlas {group.name}`"


def test_readme_starts_with_two_setup_commands() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text().splitlines()
    block_start = readme.index("```bash")
    block = readme[block_start + 1 : readme.index("```", block_start + 1)]
    assert len(block) == 2
    assert "cartatlas build" in block[0] and "pytest" in block[1]
    assert block[0].startswith("pip install -e '.[dev]' && ") and block[1].startswith("pip install -e '.[dev]' && ")
    assert "python -m pytest" in block[1]
    # CI builds its own environment and runs the README's test command read from README.md itself.
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "python3 -m venv" in ci and "mktemp -d" in ci
    assert "README.md" in ci and 'bash -c "set -euo pipefail; $test_command"' in ci
