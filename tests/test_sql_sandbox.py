"""`cartatlas sql` and `Atlas.sql` run one read-only query, with no file system or network access.

Each attack is run against a copy of a small database built from real sample
records; after it, the database must hold what it held before and every
command must still work.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner, Result

import cartatlas
from cartatlas.cli import app
from cartatlas.store.sandbox import QueryRefused, check_query
from tests.conftest import LEUKEMIA

runner = CliRunner()
SECRET = "cartatlas-test-secret-7f3a"


@pytest.fixture
def db(leukemia_db: Path) -> Path:
    return leukemia_db


@pytest.fixture
def secret_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "private"
    folder.mkdir()
    (folder / "secret.csv").write_text(f"name,value\n{SECRET},1\n")
    (folder / "secret.txt").write_text(SECRET)
    (folder / "secret.json").write_text(f'{{"name": "{SECRET}"}}')
    return folder


def sql(db: Path, query: str) -> Result:
    return runner.invoke(app, ["sql", "--db", str(db), "--format", "csv", query])


def said(result: Result) -> str:
    """What a command told the user: its output, and the one-line error ``cartatlas`` prints."""
    return " ".join((result.output + " " + str(result.exception or "")).split())


def counts(db: Path) -> tuple[int, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        raw = con.execute("SELECT count(*) FROM raw_records").fetchone()
        trials = con.execute("SELECT count(*) FROM trials").fetchone()
    assert raw is not None and trials is not None
    return raw[0], trials[0]


def test_detach_and_reattach_for_writing_is_refused_and_every_version_survives(db: Path) -> None:
    attack = (
        f"USE memory; DETACH cartatlas; ATTACH '{db}' AS cartatlas; "
        "DROP TABLE cartatlas.main.raw_records CASCADE; SELECT 1"
    )
    result = sql(db, attack)
    assert result.exit_code != 0
    assert "one statement" in said(result)
    assert counts(db) == (100, 100)
    assert runner.invoke(app, ["summary", "--db", str(db)]).exit_code == 0
    again = runner.invoke(app, ["import", "--db", str(db), str(LEUKEMIA)])
    assert again.exit_code == 0, again.output
    assert "100 unchanged" in again.output


@pytest.mark.parametrize(
    "statement",
    [
        "ATTACH '{db}' AS writable",
        "DETACH cartatlas",
        "USE memory",
        "DROP TABLE raw_records CASCADE",
        "DELETE FROM raw_records",
        "WITH doomed AS (SELECT 1) DELETE FROM raw_records",
        "UPDATE trials SET brief_title = 'x'",
        "CREATE TABLE scratch AS SELECT 1",
        "EXPLAIN ANALYZE DELETE FROM raw_records",
        "CHECKPOINT",
        "SET threads = 1",
        "PRAGMA version",
        "BEGIN TRANSACTION",
    ],
)
def test_statements_that_are_not_queries_are_refused(db: Path, statement: str) -> None:
    result = sql(db, statement.format(db=db))
    assert result.exit_code != 0
    assert "only a query" in said(result), result.output
    assert counts(db) == (100, 100)


@pytest.mark.parametrize(
    "template",
    [
        "SELECT content FROM read_text('{dir}/secret.txt')",
        "SELECT * FROM read_blob('{dir}/secret.txt')",
        "SELECT * FROM read_csv('{dir}/secret.csv')",
        "FROM '{dir}/secret.csv'",
        "SELECT * FROM read_json_auto('{dir}/secret.json')",
        "SELECT * FROM sniff_csv('{dir}/secret.csv')",
        "SELECT * FROM glob('{dir}/*')",
        "SELECT * FROM query('SELECT content FROM read_text(''{dir}/secret.txt'')')",
    ],
)
def test_files_cannot_be_read(db: Path, secret_dir: Path, template: str) -> None:
    result = sql(db, template.format(dir=secret_dir))
    assert result.exit_code != 0
    assert SECRET not in said(result)
    if "glob" in template:  # the listing names the files
        assert "secret.txt" not in said(result)


@pytest.mark.parametrize("query", ["SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM glob('/root/*')"])
def test_system_files_cannot_be_read(db: Path, query: str) -> None:
    result = sql(db, query)
    assert result.exit_code != 0
    assert "root:" not in said(result) and "/root/." not in said(result)


def test_files_cannot_be_written(db: Path, tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    for query in (
        f"COPY (SELECT 'x') TO '{precious}' (FORMAT csv)",
        f"COPY trials TO '{tmp_path / 'trials.csv'}'",
        f"EXPORT DATABASE '{tmp_path / 'dump'}'",
        f"ATTACH '{tmp_path / 'other.duckdb'}' AS other",
    ):
        result = sql(db, query)
        assert result.exit_code != 0, query
    assert precious.read_text() == "keep me"
    assert not (tmp_path / "trials.csv").exists()
    assert not (tmp_path / "dump").exists()
    assert not (tmp_path / "other.duckdb").exists()
    assert counts(db) == (100, 100)


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.1 that logs every request: it must never see one."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = b"a,b\n1,2\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_no_extension_is_installed_or_loaded_and_no_network_is_used(
    db: Path, http_server: tuple[str, list[str]]
) -> None:
    url, seen = http_server
    for statement in ("INSTALL httpfs", "LOAD httpfs", "FORCE INSTALL httpfs"):
        result = sql(db, statement)
        assert result.exit_code != 0
        assert "only a query" in said(result)
    result = sql(db, f"SELECT * FROM read_csv('{url}/data.csv')")
    assert result.exit_code != 0
    assert seen == []
    # The settings behind it, as the query connection has them (and they cannot be changed).
    settings = sql(
        db,
        "SELECT current_setting('enable_external_access')::VARCHAR AS external, "
        "current_setting('lock_configuration')::VARCHAR AS locked, "
        "current_setting('autoinstall_known_extensions')::VARCHAR AS autoinstall, "
        "current_setting('autoload_known_extensions')::VARCHAR AS autoload",
    )
    assert settings.exit_code == 0, settings.output
    assert settings.output.split() == ["external,locked,autoinstall,autoload", "false,true,false,false"]


def test_every_table_and_view_is_still_queryable(db: Path) -> None:
    with duckdb.connect(str(db), read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
    assert {"trials", "raw_records", "trial_sites", "trial_countries", "record_versions", "trial_clusters"} <= set(
        names
    )
    for name in names:
        result = sql(db, f"SELECT count(*) AS n FROM {name}")
        assert result.exit_code == 0, f"{name}: {result.output}"
    pinned = {"trials": 100, "raw_records": 100, "record_versions": 100, "classifications": 100, "trial_sites": 669}
    for name, n in pinned.items():
        assert sql(db, f"SELECT count(*) AS n FROM {name}").output.split() == ["n", str(n)], name


@pytest.mark.parametrize(
    "query",
    [
        "SELECT count(*) FROM trials",
        "WITH t AS (SELECT * FROM trials) SELECT count(*) FROM t",
        "VALUES (1, 'a')",
        "FROM trial_countries LIMIT 3",
        "DESCRIBE trials",
        "SHOW TABLES",
        "SUMMARIZE classifications",
        "EXPLAIN SELECT * FROM trials",
        "EXPLAIN ANALYZE SELECT count(*) FROM trial_sites",
        "  SELECT 1 ;  ",
    ],
)
def test_queries_of_every_kind_run(db: Path, query: str) -> None:
    result = sql(db, query)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("query", ["", " ; ", "SELECT 1; SELECT 2", "SELECT 1; DROP TABLE trials"])
def test_check_query_wants_exactly_one_statement(query: str) -> None:
    with pytest.raises(QueryRefused, match="one statement"):
        check_query(query)


def test_atlas_sql_is_sandboxed_unless_asked_for_a_writable_connection(db: Path, secret_dir: Path) -> None:
    """The Python API: a writable atlas too answers queries on a read-only, file-less connection."""
    with cartatlas.open(db) as atlas:
        with pytest.raises(QueryRefused, match="only a query"):
            atlas.sql("DROP TABLE raw_records CASCADE")
        with pytest.raises(QueryRefused, match="one statement"):
            atlas.sql(f"USE memory; DETACH cartatlas; ATTACH '{db}' AS cartatlas; SELECT 1")
        with pytest.raises(duckdb.PermissionException):
            atlas.sql(f"SELECT content FROM read_text('{secret_dir}/secret.txt')")
        assert atlas.sql("SELECT count(*) AS n FROM trials WHERE registry = ?", ["ctgov"])["n"][0] == 100
        # The store still writes after those queries, and queries see what it wrote.
        assert atlas.import_files([LEUKEMIA]).unchanged == 100
        atlas.sql("CREATE TABLE scratch AS SELECT 42 AS answer", writable=True)
        assert atlas.sql("SELECT answer FROM scratch")["answer"][0] == 42
    with cartatlas.open(db, read_only=True) as atlas:
        assert atlas.sql("SELECT answer FROM scratch")["answer"][0] == 42
        with pytest.raises(QueryRefused):
            atlas.sql("DROP TABLE scratch")
        with pytest.raises(duckdb.PermissionException):
            atlas.sql(f"FROM '{secret_dir}/secret.csv'")
    assert counts(db) == (100, 100)
