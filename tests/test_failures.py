"""Failures say what happened, in words: a full disk, a database another process holds, a database
whose creation was cut short, runs of killed processes, trials left unclassified.

Where locking is concerned, a real second Python process holds the database.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner, Result

import cartatlas
from cartatlas.cli import app
from cartatlas.store.db import StorageError, Store
from tests.conftest import CTGOV, LEUKEMIA

runner = CliRunner()


def said(result: Result) -> str:
    """What a command told the user: its output, and the one-line error ``cartatlas`` prints."""
    return " ".join((result.output + " " + str(result.exception or "")).split())


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def db(leukemia_db: Path) -> Path:
    return leukemia_db


def _env() -> dict[str, str]:
    """The environment of a child process: the cartatlas these tests import, no database from the environment."""
    source = str(Path(cartatlas.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    env.pop("CARTATLAS_DB", None)
    return env


def _python(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120
    )


# -- a full disk ------------------------------------------------------------------------------------


@contextmanager
def _mounted_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at ``where`` (skips the test where mounting is not allowed)."""
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_one_line_naming_the_cause_and_the_file(tmp_path: Path) -> None:
    """A real full disk: a 3 MB file system, and an import of every ClinicalTrials.gov sample."""
    with _mounted_tmpfs(tmp_path / "tiny", "3m") as tiny:
        target = tiny / "full.duckdb"
        proc = subprocess.run(
            [sys.executable, "-m", "cartatlas", "import", "--db", str(target), str(CTGOV)],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        err = flat(proc.stderr)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr and "cannot rollback" not in proc.stderr
        said_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(said_lines) == 1, proc.stderr[-3000:]
        assert said_lines[0].startswith(f"error: no space left on device while writing {target}"), err
        assert said_lines[0].endswith("free some space and run the command again (what was saved before is kept)")
        with Store.open(target, read_only=True) as store:
            assert store.con.execute("SELECT kind, status FROM runs").fetchall() == [("import", "failed")]


class _DiskFullAtCommit:
    """The store's connection, except that the next COMMIT fails the way DuckDB's does on a full disk:
    the transaction is gone, and the error names the write-ahead log."""

    def __init__(self, con: duckdb.DuckDBPyConnection, wal: str) -> None:
        self._con = con
        self._wal = wal
        self.armed = True

    def execute(self, query: str, *args: Any) -> duckdb.DuckDBPyConnection:
        if self.armed and query.strip().upper() == "COMMIT":
            self.armed = False
            self._con.execute("ROLLBACK")
            raise duckdb.TransactionException(
                f'TransactionContext Error: Failed to commit: Could not write file "{self._wal}": '
                "No space left on device"
            )
        return self._con.execute(query, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def test_a_failed_commit_is_reported_as_its_cause_and_the_run_as_failed(tmp_path: Path) -> None:
    """Where no file system can be mounted: DuckDB's failure injected at the connection, same checks."""
    path = tmp_path / "inject.duckdb"
    with cartatlas.open(path) as atlas:
        real = atlas.store.con
        atlas.store.con = _DiskFullAtCommit(real, f"{path}.wal")  # type: ignore[assignment]
        with pytest.raises(StorageError) as failed:
            atlas.import_files([LEUKEMIA])
        assert str(failed.value).startswith(
            f"no space left on device while writing {path}.wal (the database's write-ahead log); free some space"
        )
        atlas.store.con = real
        assert atlas.sql("SELECT status FROM runs")["status"].tolist() == ["failed"]
        assert atlas.sql("SELECT count(*) AS n FROM raw_records")["n"][0] == 0
        assert atlas.import_files([LEUKEMIA]).new == 100  # nothing half-written stands in the way


# -- another process holds the database -------------------------------------------------------------

HOLD = """
import sys
import cartatlas
atlas = cartatlas.open(sys.argv[1], read_only=sys.argv[2] == "read-only")
print("ready", flush=True)
sys.stdin.readline()
atlas.close()
"""


@contextmanager
def held(db: Path, mode: str) -> Iterator[subprocess.Popen[str]]:
    """A second cartatlas process with ``db`` open (``read-only`` or ``writable``) until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db), mode],
        cwd=db.parent,
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.communicate()[1]
        yield proc
    finally:
        proc.communicate("\n", timeout=60)


def test_a_database_held_by_another_process_says_so_with_its_pid(db: Path, tmp_path: Path) -> None:
    with held(db, "writable") as holder:
        for args in (
            ["summary"],
            ["sql", "SELECT 1"],
            ["report", "--out", str(tmp_path / "report"), "--no-figures"],
            ["import", str(LEUKEMIA)],
        ):
            result = runner.invoke(app, [*args, "--db", str(db)])
            assert result.exit_code != 0, args
            assert f"in use by another cartatlas process, PID {holder.pid}" in said(result), said(result)
            assert "cannot open as a DuckDB database" not in said(result)


def test_readers_work_side_by_side(db: Path, tmp_path: Path) -> None:
    """A report is written while another process runs `sql` or `summary` (both only read)."""
    with held(db, "read-only"):
        for args in (
            ["report", "--out", str(tmp_path / "report"), "--no-figures"],
            ["summary"],
            ["sql", "SELECT count(*) FROM trials"],
            ["export", "--format", "csv", "--out", str(tmp_path / "trials.csv")],
            ["versions", "NCT05756322"],
            ["review"],
        ):
            result = runner.invoke(app, [*args, "--db", str(db)])
            assert result.exit_code == 0, f"{args}: {said(result)}"
    assert (tmp_path / "report" / "index.html").exists()
    assert len((tmp_path / "trials.csv").read_text().splitlines()) > 100


@pytest.fixture
def read_only_db(leukemia_built: Path, tmp_path: Path) -> Iterator[Path]:
    """The database in a read-only directory, itself read-only (mode 444).

    root ignores file modes, so as root the directory is a file system
    remounted read-only; as anyone else the modes are enough.
    """
    if os.geteuid() == 0:
        with _mounted_tmpfs(tmp_path / "shelf", "64m") as shelf:
            path = shelf / "atlas.duckdb"
            shutil.copy(leukemia_built, path)
            path.chmod(0o444)
            shelf.chmod(0o555)
            remounted = subprocess.run(["mount", "-o", "remount,ro", str(shelf)], capture_output=True)
            if remounted.returncode != 0:
                pytest.skip(f"cannot remount read-only: {remounted.stderr.decode().strip()}")
            yield path
        return
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    path = shelf / "atlas.duckdb"
    shutil.copy(leukemia_built, path)
    path.chmod(0o444)
    shelf.chmod(0o555)
    try:
        yield path
    finally:
        shelf.chmod(0o755)


def test_a_read_only_database_file_can_be_reported_and_queried(read_only_db: Path, tmp_path: Path) -> None:
    for args in (
        ["report", "--out", str(tmp_path / "report"), "--no-figures"],
        ["summary"],
        ["sql", "SELECT count(*) FROM trial_sites"],
        ["export", "--format", "jsonl", "--out", str(tmp_path / "trials.jsonl")],
        ["versions", "NCT05756322"],
        ["review"],
    ):
        result = runner.invoke(app, [*args, "--db", str(read_only_db)])
        assert result.exit_code == 0, f"{args}: {said(result)}"
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["provenance"]["snapshot"][0]["records"] == 100
    # A command that writes says why it cannot, and what still works.
    refused = runner.invoke(app, ["import", str(LEUKEMIA), "--db", str(read_only_db)])
    assert refused.exit_code != 0
    message = said(refused).lower()
    assert "read-only file system" in message or "permission denied" in message, message
    assert str(read_only_db) in said(refused) and "commands that only read" in message


# -- a database whose creation was cut short ---------------------------------------------------------

DIE_WHILE_CREATING = """
import os
import sys
from cartatlas.store import db, migrations

def die(con):
    os._exit(9)

# The first two migrations commit; the process dies inside the third.
db.MIGRATIONS = [*migrations.MIGRATIONS[:2], migrations.Migration(3, "never finished", die)]
import cartatlas
cartatlas.open(sys.argv[1])
"""


def test_a_database_whose_creation_was_interrupted_gives_advice_that_works(tmp_path: Path) -> None:
    path = tmp_path / "half.duckdb"
    died = _python(DIE_WHILE_CREATING, str(path), cwd=tmp_path)
    assert died.returncode == 9, died.stderr
    result = runner.invoke(app, ["summary", "--db", str(path)])
    assert result.exit_code != 0
    message = said(result)
    assert "--read-only" not in message
    assert "schema version 2 of" in message and "interrupted" in message
    advice = message.split("bring it up to date with: ", 1)[1]
    command = shlex.split(advice)
    assert command[:2] == ["cartatlas", "rebuild"]
    fixed = runner.invoke(app, command[1:])
    assert fixed.exit_code == 0, said(fixed)
    assert runner.invoke(app, ["summary", "--db", str(path)]).exit_code == 0


# -- runs of killed processes, trials not yet classified ----------------------------------------------

KILLED_IMPORT = """
import os
import signal
import sys
import cartatlas

# Killed the moment its first batch is committed: before it finishes the run or classifies anything.
with cartatlas.open(sys.argv[1]) as atlas:
    atlas.import_files([sys.argv[2]], on_batch=lambda stats: os.kill(os.getpid(), signal.SIGKILL))
"""


def test_a_killed_run_shows_as_interrupted_and_unclassified_trials_are_warned_of(tmp_path: Path) -> None:
    path = tmp_path / "killed.duckdb"
    killed = _python(KILLED_IMPORT, str(path), str(LEUKEMIA), cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    # Read-only, as summary opens it: nothing could write the run's end down yet.
    result = runner.invoke(app, ["summary", "--db", str(path), "--json"])
    assert result.exit_code == 0, said(result)
    summary = json.loads(result.stdout)
    assert summary["runs"] == {"interrupted": 1}
    assert [r["status"] for r in summary["last_runs"]] == ["interrupted"]
    assert summary["unclassified_trials"] == 100
    text = runner.invoke(app, ["summary", "--db", str(path)])
    assert "runs: interrupted 1" in flat(text.output)
    assert "warning: 100 of 100 trials are not classified yet" in flat(text.output)

    # The next process that opens it for writing records the run as interrupted.
    with cartatlas.open(path) as atlas:
        assert atlas.sql("SELECT status FROM runs")["status"].tolist() == ["interrupted"]
        atlas.classify()
    result = runner.invoke(app, ["summary", "--db", str(path)])
    assert "not classified" not in result.output


def test_summary_of_a_fully_classified_database_has_no_warning(db: Path) -> None:
    result = runner.invoke(app, ["summary", "--db", str(db), "--json"])
    summary = json.loads(result.stdout)
    assert summary["unclassified_trials"] == 0
    assert summary["runs"] == {"ok": 1}
    assert "warning" not in result.output
