"""What the commands print: machine output byte-exact, and no registry, file or curator text read as markup.

Machine output (CSV, JSON, JSON lines, stored payloads) must be the same bytes
whether stdout is a terminal, a pipe or a file, and text from records, file
names and curation files must come out as written: never wrapped, never
read as Rich markup (``[/x]`` crashed the commands, ``[draft]`` vanished) and
never turned into an emoji (``:x:``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
import termios
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import cartatlas
from cartatlas.cli import app
from cartatlas.cli.common import CliError, literal, styled
from tests.hostile import LEUKEMIA, MARKUP, base_study, hostile_study, write_studies

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

#: Fifty trials with long titles, lists, structs, NULLs (acronym: 40 of the 50), dates and numbers.
QUERY = (
    "SELECT trial_id, brief_title, acronym, phases, conditions, first_posted, enrollment, has_results, sites "
    "FROM trials ORDER BY trial_id LIMIT 50"
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("out") / "out.duckdb"
    with cartatlas.open(path) as atlas:
        atlas.import_files([LEUKEMIA])
    return path


def native_rows(db: Path, query: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def run_cli(
    args: list[str], *, tty: bool, tty_stderr: bool = False, env: dict[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    """Run ``python -m cartatlas`` with stdout a terminal or a pipe; returns (status, out, err).

    The terminal is a pseudo-terminal whose newline translation is switched off,
    so the bytes read are the bytes the program wrote.  ``tty_stderr`` puts
    stderr on the same terminal (its bytes then come with stdout's).
    """
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    cmd = [sys.executable, "-m", "cartatlas", *args]
    if not tty:
        proc = subprocess.run(cmd, capture_output=True, env=full_env, timeout=120)
        return proc.returncode, proc.stdout, proc.stderr
    master, slave = pty.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    err_to = slave if tty_stderr else subprocess.PIPE
    with subprocess.Popen(cmd, stdout=slave, stderr=err_to, env=full_env) as proc:
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the program closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        err = proc.stderr.read() if proc.stderr else b""
        proc.wait(timeout=120)
    os.close(master)
    return proc.returncode, b"".join(chunks), err


def test_sql_csv_has_one_line_per_row_and_exact_values(db: Path) -> None:
    result = runner.invoke(app, ["sql", "--db", str(db), QUERY, "-f", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout, newline="")))
    assert len(rows) == 51  # header + 50 rows, however long the titles (Rich wrapped them into 107)
    assert rows[0] == ["trial_id", "brief_title", "acronym", "phases", "conditions", "first_posted", "enrollment",
                       "has_results", "sites"]  # fmt: skip
    for got, want in zip(rows[1:], native_rows(db, QUERY), strict=True):
        trial_id, title, acronym, phases, conditions, first_posted, enrollment, has_results, sites = want
        assert got[0] == trial_id and got[1] == title
        assert got[2] == (acronym or "")  # NULL is empty, not 'None' or 'nan'
        assert got[3] == "; ".join(phases)  # lists of strings as in `export --format csv`
        assert got[4] == "; ".join(conditions)
        assert got[5] == first_posted.isoformat()
        assert got[6] == str(enrollment)
        assert got[7] == ("true" if has_results else "false")
        assert json.loads(got[8]) == sites
    assert sum(1 for r in rows[1:] if r[2] == "") == 40


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_sql_output_is_the_same_bytes_on_a_terminal_a_pipe_and_a_narrow_screen(db: Path, fmt: str) -> None:
    args = ["sql", "--db", str(db), QUERY, "-f", fmt]
    status, piped, _ = run_cli(args, tty=False)
    assert status == 0
    status, on_terminal, err = run_cli(args, tty=True, env={"COLUMNS": "20"})
    assert status == 0, err
    assert on_terminal == piped
    assert piped.count(b"\n") == {"csv": 51, "json": 1, "jsonl": 50}[fmt]


def test_sql_json_is_valid_json_with_typed_values(db: Path) -> None:
    result = runner.invoke(app, ["sql", "--db", str(db), QUERY, "-f", "json"])
    assert result.exit_code == 0, result.output
    objs = json.loads(result.stdout)
    assert len(objs) == 50
    for got, want in zip(objs, native_rows(db, QUERY), strict=True):
        assert got["trial_id"] == want[0] and got["brief_title"] == want[1]
        assert got["acronym"] == want[2]  # None for NULL
        assert got["phases"] == want[3] and got["conditions"] == want[4]  # JSON arrays
        assert got["first_posted"] == want[5].isoformat()
        assert got["enrollment"] == want[6] and got["has_results"] is want[7]
        assert got["sites"] == json.loads(json.dumps(want[8]))
    for bad in (b"NaT", b"NaN", b"None", b"array("):
        assert bad not in result.stdout_bytes


def test_sql_jsonl_and_nulls_of_every_kind(db: Path) -> None:
    query = (
        "SELECT NULL::DATE AS d, NULL::DOUBLE AS f, NULL::VARCHAR[] AS l, NULL::BIGINT AS i, "
        "TIMESTAMP '2020-01-02 03:04:05' AS ts, 1.25::DECIMAL(10,2) AS dec, 12345678901234567 AS big, "
        "-5 AS neg, [1, 2] AS ints"
    )
    result = runner.invoke(app, ["sql", "--db", str(db), query, "-f", "jsonl"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "d": None, "f": None, "l": None, "i": None, "ts": "2020-01-02T03:04:05", "dec": 1.25,
        "big": 12345678901234567, "neg": -5, "ints": [1, 2],
    }  # fmt: skip
    csv_out = runner.invoke(app, ["sql", "--db", str(db), query, "-f", "csv"]).stdout
    assert csv_out.splitlines()[1] == ',,,,2020-01-02T03:04:05,1.25,12345678901234567,-5,"[1,2]"'


def test_unknown_sql_format_is_refused(db: Path) -> None:
    result = runner.invoke(app, ["sql", "--db", str(db), "SELECT 1", "-f", "xml"])
    assert isinstance(result.exception, CliError) and "unknown format 'xml'" in str(result.exception)


def test_versions_show_prints_the_stored_payload_exactly(db: Path) -> None:
    (payload,) = native_rows(db, "SELECT payload FROM raw_records WHERE record_id = 'NCT05756322'")[0]
    (version_id,) = native_rows(db, "SELECT version_id FROM raw_records WHERE record_id = 'NCT05756322'")[0]
    args = ["versions", "--db", str(db), "NCT05756322", "--show", str(version_id)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == str(payload).encode("utf-8")
    assert json.loads(result.stdout)["protocolSection"]["identificationModule"]["nctId"] == "NCT05756322"
    status, on_terminal, _ = run_cli(args, tty=True)
    assert status == 0 and on_terminal == result.stdout_bytes


def test_versions_show_refuses_a_version_of_another_record(db: Path) -> None:
    (other,) = native_rows(db, "SELECT version_id FROM raw_records WHERE record_id = 'NCT03466944'")[0]
    # The entry point prints a CliError as one line on stderr and exits 2.
    status, out, err = run_cli(["versions", "--db", str(db), "NCT05756322", "--show", str(other)], tty=False)
    assert status == 2 and out == b""
    assert f"error: version {other} is not a version of NCT05756322 (its versions: 1)" in err.decode()
    missing = runner.invoke(app, ["versions", "--db", str(db), "NCT05756322", "--show", "999999"])
    assert isinstance(missing.exception, CliError) and "999999" in str(missing.exception)


def test_version_option_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"cartatlas {cartatlas.__version__}\n"


# -- registry, file and curator text is never markup ----------------------------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A folder and database whose names, records and curation file carry Rich markup and an emoji code."""
    base = tmp_path_factory.mktemp("hostile")
    tmp = base / "records [draft][/x]"
    first = hostile_study("NCT99999998", title=f"{MARKUP} CD19 CAR-T cells", sponsor=MARKUP)
    first["protocolSection"]["statusModule"]["overallStatus"] = "[/x]:x:[bold]"  # summary lists statuses
    records = write_studies(
        tmp / "cart [draft].json",
        [
            first,
            # A trial the review lists (a conflict of labels, medium confidence), under a hostile title.
            hostile_study("NCT99999997", title=f"{MARKUP} CD19 CAR T-cells for B-Cell Leukemia", base_id="NCT04100187"),
        ],
    )
    broken = base_study()
    del broken["protocolSection"]["identificationModule"]["nctId"]
    rejected = write_studies(tmp / "bad [bold] :x:.json", [broken])
    curation = base / "curation [red].csv"
    with curation.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["trial_id", "field", "value", "reason", "curator", "date"])
        w.writerow(["NCT99999998", "relation", MARKUP, "checked", "tester", "2030-01-01"])
        w.writerow(["NCT0000[/x]", "relation", "none", "checked", "tester", "2030-01-01"])
    db = base / "db [/x].duckdb"  # a folder 'db [' holding 'x].duckdb'
    db.parent.mkdir()
    return {"dir": tmp, "records": records, "rejected": rejected, "curation": curation, "db": db}


def test_hostile_names_and_records_through_import_curate_sql_review_summary(hostile: dict[str, Path]) -> None:
    db = str(hostile["db"])
    imported = runner.invoke(app, ["import", "--db", db, str(LEUKEMIA), str(hostile["dir"])])
    assert imported.exit_code == 1, imported.output  # the broken record is rejected, the rest imported
    assert "bad [bold] :x:.json" in imported.stderr  # the file name as it is, not 'bad .json'

    curated = runner.invoke(app, ["curate", "--db", db, str(hostile["curation"])])
    assert curated.exit_code == 1, curated.output
    assert MARKUP in curated.stderr and "NCT0000[/x]" in curated.stderr
    assert "curation [red].csv" in curated.stderr

    table = runner.invoke(app, ["sql", "--db", db, "SELECT brief_title FROM trials WHERE trial_id = 'NCT99999998'"])
    assert table.exit_code == 0, table.output
    assert "[/x] [bold]bold :x: cart [draft]" in table.stdout
    as_csv = runner.invoke(app, ["sql", "--db", db, "SELECT lead_sponsor FROM trials WHERE trial_id = 'NCT99999998'",
                                 "-f", "csv"])  # fmt: skip
    assert as_csv.stdout == f"lead_sponsor\n{MARKUP}\n"
    as_json = runner.invoke(app, ["sql", "--db", db, "SELECT lead_sponsor FROM trials WHERE trial_id = 'NCT99999998'",
                                  "-f", "json"])  # fmt: skip
    assert json.loads(as_json.stdout) == [{"lead_sponsor": MARKUP}]

    review = runner.invoke(app, ["review", "--db", db, "--limit", "1000"])
    assert review.exit_code == 0, review.output
    assert f"      {MARKUP} CD19 CAR T-cells for B-Cell Leukemia\n" in review.stdout
    assert "❌" not in review.stdout

    summary = runner.invoke(app, ["summary", "--db", db])
    assert summary.exit_code == 0, summary.output
    assert "db [/x].duckdb" in summary.stdout
    assert "[/X]:X:[BOLD] 1" in summary.stdout  # the status as the normaliser spells it
    as_json = runner.invoke(app, ["summary", "--db", db, "--json"])
    assert json.loads(as_json.stdout)["database"].endswith("db [/x].duckdb")


def test_hostile_names_and_records_through_classify(hostile: dict[str, Path]) -> None:
    result = runner.invoke(app, ["classify", str(hostile["dir"])])
    assert result.exit_code == 1  # the broken record
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [c["trial_id"] for c in lines] == ["NCT99999998", "NCT99999997"]
    assert "bad [bold] :x:.json" in result.stderr


def test_file_names_survive_the_progress_bar_on_a_terminal(hostile: dict[str, Path], tmp_path: Path) -> None:
    """On a terminal the bar names the file being imported; a name with markup must not crash it."""
    db = tmp_path / "t.duckdb"
    status, out, _ = run_cli(["import", "--db", str(db), str(hostile["records"])], tty=True, tty_stderr=True)
    assert status == 0, out.decode(errors="replace")
    assert b"importing cart [draft].json" in out  # the bar's last state, not 'importing cart .json'
    with cartatlas.open(db, read_only=True) as atlas:
        assert atlas.sql("SELECT lead_sponsor FROM trials ORDER BY trial_id DESC")["lead_sponsor"][0] == MARKUP


def _acts_on_terminal(c: str) -> bool:
    """C0 controls other than tab and newline, DEL and C1 controls: what a terminal may act on."""
    return (ord(c) < 32 and c not in "\t\n") or 127 <= ord(c) <= 159


@given(st.text())
def test_styled_messages_show_any_value_literally(value: str) -> None:
    """Whatever a record, file name or curator writes, a message shows it as written, control characters marked."""
    shown = "".join("\ufffd" if _acts_on_terminal(c) else c for c in value)
    assert styled("[yellow]{}[/] line {}: {}", value, 3, value).plain == f"{shown} line 3: {shown}"
    assert literal(value).plain == shown


def test_review_does_not_pass_terminal_escapes_through(tmp_path: Path) -> None:
    """An ESC sequence in a registry title (here: clear the screen) reaches the terminal as a harmless mark."""
    records = write_studies(
        tmp_path / "esc.json",
        [hostile_study("NCT99999996", title="\x1b[2J\x1b]0;owned\x07CD19 CAR T", base_id="NCT04100187")],
    )
    db = tmp_path / "esc.duckdb"
    with cartatlas.open(db) as atlas:
        atlas.import_files([records])
    result = runner.invoke(app, ["review", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\ufffd[2J\ufffd]0;owned\ufffdCD19 CAR T" in result.stdout
