"""The ``costim_domains`` label (issue 14's label added by declaration): the CAR's co-stimulatory domains.

Real records throughout: the 2,587-record monitor corpus (counts pinned after reading the trials
behind them), a database of it for the migration, the export, the curation and the explorer.
"""

from __future__ import annotations

import csv
import gzip
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import cartatlas
from cartatlas.classify import classify_trial, engine, knowledge
from cartatlas.classify.context import build_context
from cartatlas.classify.costim import decide
from cartatlas.curation import read_curation
from cartatlas.knowledge import labels
from cartatlas.model import Trial
from cartatlas.normalise import format_spec
from cartatlas.store import migrations
from tests.conftest import CTGOV

MONITOR = CTGOV / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"


@pytest.fixture(scope="module")
def monitor() -> dict[str, Trial]:
    to_trial = format_spec("ctgov_v2").to_trial
    trials = [to_trial(orjson.loads(line)) for line in gzip.decompress(MONITOR.read_bytes()).splitlines()]
    return {str(t["trial_id"]): t for t in trials}


@pytest.fixture(scope="module")
def screened(monitor: dict[str, Trial]) -> dict[str, dict[str, Any]]:
    kb = knowledge()
    return {tid: dict(classify_trial(t, kb)) for tid, t in monitor.items()}


def test_the_monitor_corpus_domains_are_pinned(screened: dict[str, dict[str, Any]]) -> None:
    """265 of 2,587 CAR trials state a domain; 4-1BB leads CD28, as in the approved products."""
    assert len(screened) == 2587
    stated = {tid: c["costim_domains"] for tid, c in screened.items() if c["costim_domains"]}
    assert len(stated) == 265
    counts = Counter(d for domains in stated.values() for d in domains)
    assert counts == {"4-1BB": 163, "CD28": 121, "OX40": 4, "CD27": 2}
    assert sum(1 for d in stated.values() if len(d) > 1) == sum(counts.values()) - 265
    rules = Counter(e["rule"] for c in screened.values() for e in c["evidence"] if e["decision"] == "costim_domains")
    assert rules == {"costim.named_product": 165, "costim.construct": 79, "costim.named_with_cue": 46}


@pytest.mark.parametrize(
    ("trial_id", "domains", "why"),
    [
        ("NCT02685670", ["CD28", "4-1BB"], "αCD19-TCRζ-CD28 and αCD19-TCRζ-CD137 CAR-T cells, compared"),
        ("NCT02439788", ["CD28", "OX40"], "iC9-GD2.CD28.OX40.zeta NKT cells: a third-generation construct"),
        ("NCT00881920", ["CD28"], "intervention 'Kappa CD28 T cells'"),
        ("NCT02348216", ["CD28"], "KTE-C19, axicabtagene ciloleucel (Yescarta label)"),
        ("NCT01029366", ["4-1BB"], "CTL019, tisagenlecleucel (Kymriah label)"),
        ("NCT01355965", ["4-1BB"], "'4-1BB' in the summary"),
        ("NCT06364852", ["4-1BB", "OX40"], "4-1BB intracellular region and the co-stimulatory receptor OX40"),
    ],
)
def test_domains_of_real_records(
    screened: dict[str, dict[str, Any]], trial_id: str, domains: list[str], why: str
) -> None:
    assert screened[trial_id]["costim_domains"] == domains, why


def test_no_other_answer_changes(monitor: dict[str, Trial], screened: dict[str, dict[str, Any]]) -> None:
    """The rule reads its own terms: targets, platforms, every other label and flag are what they were without it
    (CD28, 4-1BB, OX40 and CD27 are also in antigens.csv, as components that are never targets)."""
    kb = knowledge()
    rules = engine._declared_rules()
    try:
        engine._RULES = []
        without = {tid: dict(classify_trial(t, kb)) for tid, t in monitor.items()}
    finally:
        engine._RULES = rules
    for tid, c in screened.items():
        before = without[tid]
        assert {k: v for k, v in c.items() if k not in ("costim_domains", "evidence", "classifier_version")} == {
            k: v for k, v in before.items() if k not in ("evidence", "classifier_version")
        }, tid
        assert [e for e in c["evidence"] if e["decision"] != "costim_domains"] == before["evidence"], tid
    targets = Counter(t for c in screened.values() for t in c["targets"])
    assert not {"CD28", "CD137", "CD134", "CD27", "ICOS"} & set(targets)


def _decide(text: str, **fields: Any) -> list[str]:
    trial: dict[str, Any] = {
        "trial_id": "NCT00000001",
        "brief_title": "Anti-CD19 CAR-T cells in B-cell lymphoma",
        "interventions": [{"name": "CD19 CAR-T cells", "type": "BIOLOGICAL"}],
        "brief_summary": text,
        **fields,
    }
    ctx = build_context(Trial(**trial), knowledge())  # type: ignore[typeddict-item]
    chosen = ctx.positive()
    assert chosen
    return decide(ctx, "therapy", chosen)


@pytest.mark.parametrize(
    ("text", "domains"),
    [
        ("The CAR carries CD28 and CD3ζ signalling domains.", ["CD28"]),
        ("A second generation CAR with a 4-1BB costimulatory domain.", ["4-1BB"]),
        ("19-28z CAR T cells.", ["CD28"]),
        ("CD19.BBz CAR T cells.", ["4-1BB"]),
        ("The construct has CD28ζ.", ["CD28"]),
        # T-cell markers, antibodies and ligands are not the CAR's domains.
        ("We will count CD28+ T cells and CD27-negative cells after co-stimulation.", []),
        ("No anti-CD28 or anti-4-1BB antibody; costimulatory agonists are excluded.", []),
        ("CD28 expression on T cells will be measured.", []),
        # A cue molecule with no word of CAR anatomy in its sentence.
        ("Patients are stratified by CD28 level.", []),
        ("Patients receiving corticosteroids (icos) are excluded.", []),
    ],
)
def test_rule_cases(text: str, domains: list[str]) -> None:
    assert _decide(text) == domains


def test_outcomes_and_eligibility_are_not_read() -> None:
    assert (
        _decide(
            "CAR T cells.",
            primary_outcomes=["Fold-change in CD27/CD28 costimulatory double positive T cells"],
            eligibility_criteria="Prior 4-1BB agonist therapy",
        )
        == []
    )


def test_not_a_car_trial_has_no_domain(monitor: dict[str, Trial]) -> None:
    ctx = build_context(monitor["NCT02685670"], knowledge())
    assert decide(ctx, "none", []) == []


def test_the_rule_is_wired_from_the_declaration_and_versions_the_classifier() -> None:
    label = labels.BY_NAME["costim_domains"]
    assert label.rule == "cartatlas.classify.costim:decide" and label.is_list and label.schema_version == 10
    assert [name for name, _ in engine._declared_rules()] == ["costim_domains"]
    assert "+labels." in engine.classifier_version()


def test_curation_vocabulary_accepts_the_new_values(tmp_path: Path) -> None:
    path = tmp_path / "curation.csv"
    rows = [
        ["trial_id", "field", "value", "reason", "curator", "date"],
        ["NCT02685670", "costim_domains", "CD28; 4-1BB", "read the protocol", "ana", "2026-12-01"],
        ["NCT00881920", "costim_domains", "MyD88-CD40", "read the protocol", "ana", "2026-12-01"],
        ["NCT01355965", "costim_domains", "CD3", "a typo", "ana", "2026-12-01"],
        ["NCT02348216", "costim_domains", "(none)", "not stated after all", "ana", "2026-12-01"],
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    overrides, problems = read_curation(path)
    assert [(o.trial_id, o.parsed_value()) for o in overrides] == [
        ("NCT02685670", ["CD28", "4-1BB"]),
        ("NCT00881920", ["MyD88-CD40"]),
        ("NCT02348216", []),
    ]
    assert len(problems) == 1 and "costim_domains value(s) CD3 not in" in problems[0].message


# -- a database ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("costim") / "monitor.duckdb"
    with cartatlas.open(path) as atlas:
        atlas.import_files([MONITOR])
    return path


def test_a_database_made_before_gains_the_column(database: Path, tmp_path: Path) -> None:
    """A schema-9 database (no costim_domains column, classified by the rules before) is migrated and re-screened."""
    old = tmp_path / "old.duckdb"
    old.write_bytes(database.read_bytes())
    with cartatlas.open(old) as atlas:
        con = atlas.store.con
        # A schema-9 database has the lookup index on classifications (migration 9), which DuckDB will not
        # let a column be dropped under: dropped and made again, as migration 10 itself must do.
        con.execute("DROP INDEX classifications_by_trial_id")
        con.execute("ALTER TABLE classifications DROP COLUMN costim_domains")
        con.execute("CREATE INDEX classifications_by_trial_id ON classifications (trial_id)")
        con.execute("DELETE FROM schema_migrations WHERE version >= 10")
        con.execute("UPDATE classifications SET classifier_version = '1.3.0+kb.before'")
    with pytest.raises(cartatlas.store.db.SchemaError, match=f"schema version 9 of {migrations.LATEST_VERSION}"):
        cartatlas.open(old, read_only=True)
    with cartatlas.open(old) as atlas:
        assert atlas.store.schema_version() == migrations.LATEST_VERSION == 12
        empty = atlas.sql("SELECT count(*) AS n FROM classifications WHERE costim_domains IS NULL")["n"][0]
        assert empty == atlas.sql("SELECT count(*) AS n FROM classifications")["n"][0] == 2587
        # The rules changed (classifier version), so the screening is stale until refreshed, as after any upgrade.
        assert any("classif" in str(s).lower() for s in atlas.staleness())
        atlas.refresh()
        assert not atlas.staleness()
        got = atlas.sql("SELECT count(*) AS n FROM classifications WHERE len(costim_domains) > 0")["n"][0]
        assert got == 265
        row = atlas.sql("SELECT costim_domains FROM classifications WHERE trial_id = 'NCT02685670'")
        assert list(row["costim_domains"][0]) == ["CD28", "4-1BB"]


def test_the_export_and_the_landscape_have_it(database: Path, tmp_path: Path) -> None:
    with cartatlas.open(database, read_only=True) as atlas:
        out = tmp_path / "trials.csv"
        atlas.export("csv", out)
        with out.open(newline="", encoding="utf-8") as handle:
            rows = {r["trial_id"]: r for r in csv.DictReader(handle)}
        assert rows["NCT02685670"]["costim_domains"] == "CD28; 4-1BB"
        assert rows["NCT01029366"]["costim_domains"] == "4-1BB"
        land = atlas.landscape("2026-08-22")
    # Counted trials as of the corpus's date (one trial may state two domains); "unknown": none stated.
    table = land.tables["costim_domains"]
    assert dict(zip(table["costim_domain"], table["n"], strict=True)) == {
        "unknown": 2211,
        "4-1BB": 152,
        "CD28": 114,
        "OX40": 4,
        "CD27": 2,
    }
    assert set(table["trial_ids"][table["costim_domain"] == "OX40"].iloc[0]) >= {"NCT02439788", "NCT06364852"}


@pytest.fixture(scope="module")
def client(database: Path) -> Iterator[Any]:
    from cartatlas.explorer import Settings, create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    with TestClient(create_app(Settings(db=database, read_only=True), warm=False), base_url="http://127.0.0.1") as c:
        yield c


def test_the_explorer_trial_page_shows_it(client: Any) -> None:
    page = client.get("/trial/NCT02685670").text
    assert "costim domains" in page
    assert '<td data-label="costim_domains">CD28; 4-1BB' in page
    assert "costim.named_with_cue" in page


def test_the_explorer_filters_by_it(client: Any) -> None:
    page = client.get("/trials.csv", params=[("costim", "OX40"), ("cols", "trial"), ("cols", "costim")])
    assert page.status_code == 200
    rows = list(csv.DictReader(page.text.splitlines()))
    assert len(rows) == 4
    assert {r["Co-stimulatory domains"] for r in rows} >= {"CD28; OX40", "4-1BB; OX40"}


def test_the_explorer_landscape_shows_its_count_table(client: Any) -> None:
    page = client.get("/").text
    assert "Co-stimulatory domain" in page
    assert "OX40" in page
