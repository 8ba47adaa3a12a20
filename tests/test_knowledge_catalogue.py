"""The product catalogue and the developer table (issue 13): sourced, consistent, and read by the screening.

Sample data is read in place from ../shared/data (see conftest.py).
"""

from __future__ import annotations

import csv
import gzip
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from cartatlas.classify import Classification, classify_trial
from cartatlas.classify.knowledge import knowledge
from cartatlas.knowledge import catalogue
from cartatlas.model import Trial
from cartatlas.normalise import format_spec

DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()
RECON = DATA / "ctgov" / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"
KNOWLEDGE_DIR = Path(catalogue.__file__).parent


def _rows(name: str) -> list[dict[str, str]]:
    with (KNOWLEDGE_DIR / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_tables_are_consistent() -> None:
    """Sources, antigens, vocabularies, NCT ids, and no undeclared spelling shared by two rows."""
    assert catalogue.problems() == []


@pytest.mark.parametrize("table", ["products.csv", "developers.csv"])
def test_every_row_has_a_source(table: str) -> None:
    rows = _rows(table)
    assert rows
    assert [r["name"] for r in rows if not (r.get("source") or "").strip()] == []


def test_every_product_antigen_is_a_known_antigen() -> None:
    symbols = {r["symbol"] for r in _rows("antigens.csv")}
    named = {t for r in _rows("products.csv") for t in r["targets"].split("|") if t}
    assert named - symbols == set()
    assert {"TACI", "MICA/B", "BAFF-R", "CD5"} <= named


def test_the_checks_catch_defects() -> None:
    """The consistency checks fail on a sourceless row, an unknown antigen and an undeclared collision."""
    bad = [("X1", ("X1", "shared-name"), ()), ("X2", ("X2", "Shared Name"), ())]
    assert catalogue._collisions(bad, "t") == ["t: spelling 'shared name' names X1, X2"]
    declared = [("X1", ("X1", "shared-name"), ()), ("X2", ("X2", "Shared Name"), ("shared name",))]
    assert catalogue._collisions(declared, "t") == []
    assert any("antigen CD19 is not in antigens.csv" in p for p in catalogue.problems(antigens={"BCMA"}))


def test_developers_say_what_else_they_develop_and_prefixes_name_them() -> None:
    """Issue 13: ``pipeline`` separates developers of CAR products only from those of many kinds of products."""
    by_name = {d.name: d for d in catalogue.developers()}
    assert {d.pipeline for d in by_name.values()} == {"car", "mixed", "unknown"}
    # A developer alone is not proof: these also develop drugs or other cell products ...
    for name in (
        "Regeneron Pharmaceuticals",
        "Amgen",
        "Takeda",
        "Janssen (Johnson & Johnson)",
        "Lyell Immunopharma, Inc.",
    ):
        assert by_name[name].pipeline == "mixed", name
    # ... academic centres and hospitals run trials of every kind ...
    assert by_name["Memorial Sloan Kettering Cancer Center"].pipeline == "mixed"
    # ... while these develop CAR cell products only (their sample trials and sources).
    for name in ("Juventas Cell Therapy", "IASO Bio", "Beijing Immunochina", "MagicRNA", "Umoja Biopharma"):
        assert by_name[name].pipeline == "car", name
    prefixes = {r["prefix"]: r["developer"] for r in _rows("code_prefixes.csv")}
    assert catalogue.developer_for(prefixes["IASO"]) == by_name["IASO Bio"]
    assert catalogue.developer_for(prefixes["FKC"]) == by_name["Fosun Kite"]


def test_catalogue_size_and_sample_coverage() -> None:
    products = catalogue.products()
    # 305 from the data part of issue 13, then LYL273 (Lyell, GCC), CT1192 and CT1195E (universal CD19/20 CAR-T
    # of the CT119x family, named so by sample records) with the rules.
    assert len(products) == 308
    assert len(catalogue.developers()) == 190
    # Every product the sample names carries the NCT ids it appears in.
    by_name = {p.name: p for p in products}
    assert by_name["SYS6055"].nct_ids == ("NCT07476066", "NCT07493174")
    assert "NCT06699771" in by_name["GCC2005"].nct_ids
    assert sum(1 for p in products if p.nct_ids) == 290


def test_ambiguous_spellings_are_declared_and_kept_out_of_the_matcher() -> None:
    by_name = {p.name: p for p in catalogue.products()}
    assert by_name["KD-025"].ambiguous_aliases == ("KD-025", "KD025")  # also belumosudil
    assert by_name["CT011"].ambiguous_aliases == ("CT011",)  # also pidilizumab (CT-011)
    # A drug trial that uses the same code is not screened as a CAR trial ...
    c = classify_trial(_trial("KD025 (Belumosudil) for Chronic GVHD", ["KD025"]))
    assert c["relation"] == "none"
    c = classify_trial(_trial("F01 Vascular Dementia Cohort", ["F01"]))
    assert c["relation"] == "none"
    # ... while the products' other spellings still count.
    assert knowledge().products["KD-025"].ambiguous == ("KD-025", "KD025")
    c = classify_trial(_trial("SENL103 Autologous T Cell Injection in Myeloma", ["SENL103"]))
    assert (c["relation"], c["targets"], c["products"]) == ("therapy", ["BCMA"], ["S103"])


def test_chinese_names_are_matched() -> None:
    c = classify_trial(_trial("阿基仑赛注射液治疗复发难治大B细胞淋巴瘤的真实世界研究", ["阿基仑赛注射液"]))
    assert c["products"] == ["axicabtagene ciloleucel"] and c["targets"] == ["CD19"]
    c = classify_trial(_trial("伊基奥仑赛注射液治疗多发性骨髓瘤", ["伊基奥仑赛注射液"]))
    assert c["targets"] == ["BCMA"]


def test_developer_lookup() -> None:
    dev = catalogue.developer_for("Kite, A Gilead Company")
    assert dev is not None and dev.name == "Kite (Gilead)" and dev.kind == "company"
    hrain = catalogue.developer_for("Hrain Biotechnology Co., Ltd.")
    assert hrain is not None and "恒润达生" in hrain.chinese_names and hrain.country == "China"
    assert catalogue.developer_for("Pfizer") is None


# -- the issue's examples, on the real records -----------------------------------------------------


@lru_cache(maxsize=1)
def _recon() -> dict[str, Classification]:
    wanted = {
        "NCT07493174",
        "NCT07476066",
        "NCT06699771",
        "NCT07647744",
        "NCT04020575",
        "NCT06132711",
        "NCT06878248",
        "NCT06913608",
        "NCT06801119",
        "NCT05885464",
    }
    out: dict[str, Classification] = {}
    spec = format_spec("ctgov_v2")
    with gzip.open(RECON, "rt", encoding="utf-8") as fh:
        for line in fh:
            study = json.loads(line)
            if study["protocolSection"]["identificationModule"]["nctId"] in wanted:
                c = classify_trial(spec.to_trial(study))
                out[c["trial_id"]] = c
    return out


@pytest.mark.parametrize(
    ("nct", "relation", "targets", "platforms"),
    [
        ("NCT07493174", "therapy", ["CD19"], ["in-vivo-CAR"]),  # SYS6055, in vivo CD19 CAR-T, no CAR word
        ("NCT07476066", "therapy", ["CD19"], ["in-vivo-CAR"]),
        ("NCT06699771", "therapy", ["CD5"], ["CAR-NK"]),  # GCC2005
        ("NCT07647744", "therapy", ["CD70"], ["CAR-T"]),  # Hrain's anti-human CD70 T-cell injection
        ("NCT06132711", "therapy", ["BCMA", "TACI", "BAFF-R"], ["CAR-T"]),  # APRIL-BAFF-Bicephali, not CD4
        ("NCT06878248", "therapy", ["HER2"], ["CAR-T"]),  # CLBR001 + ABBV-461: the switch sets the target
        ("NCT06913608", "therapy", ["CD19"], ["CAR-T"]),  # CLBR001 + SWI019
        ("NCT06801119", "therapy", ["CD19"], ["in-vivo-CAR"]),  # HN2301 mRNA-LNP in vivo CAR-T
        ("NCT05885464", "therapy", ["CD7"], ["CAR-T"]),  # BEAM-201
    ],
)
def test_issue_examples(nct: str, relation: str, targets: list[str], platforms: list[str]) -> None:
    c = _recon()[nct]
    assert (c["relation"], c["targets"], c["platforms"]) == (relation, targets, platforms)


def test_humnc2_car22_targets_muc1() -> None:
    """huMNC2-CAR22 targets MUC1*: the catalogue row wins over reading "CAR22" as CD22 (issue 13 rules)."""
    assert _recon()["NCT04020575"]["targets"] == ["MUC1"]


def _trial(title: str, interventions: list[str]) -> Trial:
    record: dict[str, Any] = {
        "trial_id": "NCT00000000",
        "registry": "ctgov",
        "brief_title": title,
        "conditions": [],
        "interventions": [{"type": None, "name": n, "other_names": [], "description": None} for n in interventions],
        "arm_groups": [],
        "keywords": [],
        "primary_outcomes": [],
    }
    return record  # type: ignore[return-value]


# -- the adjudicated set -----------------------------------------------------------------------------

ADJUDICATED = Path(__file__).resolve().parent / "fixtures" / "adjudicated.csv"


def _adjudicated_rows() -> list[dict[str, str]]:
    lines = [ln for ln in ADJUDICATED.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines))


def test_adjudicated_set_is_complete_and_reasoned() -> None:
    rows = _adjudicated_rows()
    assert len(rows) == 195
    assert all(r["reason"].strip() and r["trial_id"].startswith("NCT") for r in rows)
    assert {r["winner"] for r in rows} <= {"cartatlas", "peer", "both", "neither", "undecided"}
    by_field: dict[str, int] = {}
    for r in rows:
        by_field[r["field"]] = by_field.get(r["field"], 0) + 1
        # a decided row carries its decision in the column `cartatlas evaluate` reads
        if r["winner"] != "undecided" and r["field"] == "landscape":
            assert r["landscape"] in ("yes", "no")
    assert by_field == {"landscape": 144, "targets": 33, "platforms": 18}


def test_adjudicated_set_scores_the_screening() -> None:
    """The file is a labels file for `cartatlas evaluate`; pinned: what the catalogue alone fixes."""
    from cartatlas.classify.evaluate import evaluate, load_labels

    labels = [lab for lab in load_labels(ADJUDICATED) if set(lab) - {"trial_id"}]
    wanted = {lab["trial_id"] for lab in labels}
    spec = format_spec("ctgov_v2")
    classified: dict[str, Classification] = {}
    with gzip.open(RECON, "rt", encoding="utf-8") as fh:
        for line in fh:
            study = json.loads(line)
            if study["protocolSection"]["identificationModule"]["nctId"] in wanted:
                c = classify_trial(spec.to_trial(study))
                classified[c["trial_id"]] = c
    report = evaluate(labels, classified)
    land = report.scores["landscape"]
    # 101 decided former-`none` monitor trials and the 8 CAR trials the peers exclude for scope.  With the
    # catalogue alone 69 were right (27 of the 67 CAR trials counted); with the issue 13 rules 108: every CAR
    # trial but OriV508 (NCT07101705: neither a CAR word nor its developer in the record), none of the 34 others.
    assert (land.n, land.exact) == (109, 108)
    assert land.per_class["yes"] == [74, 0, 1]
    relation = report.scores["relation"]
    assert (relation.n, relation.exact) == (109, 108)
    targets = report.scores["targets"]
    # 24 of 26: PIC1 (NCT07456371, CD19 by the peers' reading, unnamed in the record) and NCT06732232 (its
    # title and intervention name different antigens) are the two left.
    assert (targets.n, targets.exact) == (26, 24)
