"""SQL from users: one query, on a connection that can neither write nor reach files or the network.

``cartatlas sql`` and ``Atlas.sql`` run SQL a user typed.  Left to itself
DuckDB runs several statements in a row, detaches and re-attaches files for
writing, reads any file (``read_text``, ``read_csv``, ``glob``), writes any
file (``COPY``, ``EXPORT DATABASE``) and downloads extensions.  Two fences,
each enough for most of that on its own, keep it out:

1. DuckDB's own parser decides what the text is (never a pattern over the
   text): exactly one statement, and a query.  Every form of query parses as a
   SELECT statement (``WITH``, ``VALUES``, ``FROM`` first, ``TABLE``,
   ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``, ``PIVOT`` with its values listed);
   ``EXPLAIN [ANALYZE]`` is allowed around one.
2. The query runs on a DuckDB instance of its own, which attached the database
   file ``READ_ONLY``, then turned external access off and locked its
   configuration, with extensions neither installed nor loaded on demand.  The
   order matters: DuckDB checks ``ATTACH`` against external access too, so the
   file is attached first; the lock comes last, and nothing can lift it.

The only file such a connection still reads is the database itself (DuckDB
allows the files it has attached), which holds nothing a query could not
select anyway.
"""

from __future__ import annotations

import duckdb

#: The statements a user's query may be (DuckDB's parser gives every form of query as SELECT).
QUERY_KINDS = "SELECT, WITH, VALUES, FROM, TABLE, DESCRIBE, SHOW, SUMMARIZE, PIVOT ... IN (...), or EXPLAIN of one"

#: DuckDB settings of the query connection, set when it is created.
_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    # Python variables in the caller's frames are not tables of the atlas.
    "python_enable_replacements": False,
}


class QueryRefused(ValueError):
    """The SQL is not a single query, so it is not run at all."""


def check_query(query: str) -> None:
    """Refuse anything but exactly one query, as DuckDB's parser reads the text.

    A syntax error is DuckDB's own ``ParserException``, raised as is.
    """
    statements = duckdb.extract_statements(query)
    if len(statements) != 1:
        raise QueryRefused(
            f"one statement at a time: this SQL has {len(statements)}" + (" (it is empty)" if not statements else "")
        )
    _check_statement(statements[0])


def _check_statement(statement: duckdb.Statement) -> None:
    kind = statement.type
    if kind == duckdb.StatementType.SELECT:
        return
    if kind == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE runs the statement it explains: that one must be a query too.
        inner = duckdb.extract_statements(_explained(statement.query))
        if len(inner) == 1:
            _check_statement(inner[0])
            return
        raise QueryRefused("EXPLAIN explains one query")
    name = kind.name if kind != duckdb.StatementType.MULTI else "several statements (a PIVOT without IN (...)?)"
    raise QueryRefused(f"only a query can run here ({QUERY_KINDS}); this is {name}")


def _explained(text: str) -> str:
    """The statement an ``EXPLAIN [ANALYZE] [(options)]`` statement explains, by DuckDB's tokenizer."""
    tokens = duckdb.tokenize(text)
    starts = [start for start, _ in tokens] + [len(text)]
    words = [text[starts[i] : starts[i + 1]].strip() for i in range(len(tokens))]
    i = 1  # past EXPLAIN
    if i < len(words) and words[i].upper() == "ANALYZE":
        i += 1
    if i < len(words) and words[i].startswith("("):
        depth = 0
        while i < len(words):
            if tokens[i][1] == duckdb.token_type.operator:
                depth += words[i].count("(") - words[i].count(")")
            i += 1
            if depth <= 0:
                break
    return text[starts[i] :] if i < len(tokens) else ""


def open_query_connection(path: str, catalog: str) -> duckdb.DuckDBPyConnection:
    """A new DuckDB instance with the database file at ``path`` attached read-only as ``catalog``.

    External access is turned off after the ``ATTACH`` (it would refuse the
    file itself) and the configuration is locked last.
    """
    con = duckdb.connect(config=_CONFIG)
    quoted = path.replace("'", "''")
    try:
        con.execute(f"ATTACH '{quoted}' AS {catalog} (READ_ONLY)")
        con.execute(f"USE {catalog}")
        # Spill files of a large sort next to the database, as the store's own connection does.
        con.execute(f"SET temp_directory = '{quoted}.tmp'")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con
