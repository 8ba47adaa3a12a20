"""Screening of real registry records, with answers worked out by reading each record.

Sample data is read in place from ../shared/data (see conftest.py).
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from cartatlas.classify import Classification, classify_trial
from cartatlas.cli.classify import iter_trials
from cartatlas.model import Trial
from cartatlas.normalise import format_spec

DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()
RECON = DATA / "ctgov" / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"
LEUKEMIA = DATA / "ctgov" / "api_v2" / "leukemia_query_100.json"
LEGACY_CSV = DATA / "ctgov" / "website_csv" / "legacy_site_b_cell_query_2018.csv"


def _to_trial(study: dict[str, Any]) -> Trial:
    return format_spec("ctgov_v2").to_trial(study)


@lru_cache(maxsize=1)
def recon() -> dict[str, Classification]:
    out = {}
    with gzip.open(RECON, "rt", encoding="utf-8") as fh:
        for line in fh:
            c = classify_trial(_to_trial(json.loads(line)))
            out[c["trial_id"]] = c
    return out


@lru_cache(maxsize=1)
def leukemia() -> dict[str, Classification]:
    studies = json.loads(LEUKEMIA.read_text(encoding="utf-8"))
    return {c["trial_id"]: c for c in (classify_trial(_to_trial(s)) for s in studies)}


# -- the 2,587 monitor records ------------------------------------------------------------------

# (NCT id, relation, targets, extra checks) decided by reading the record text.
RECON_CASES = [
    # "CD19 Chimeric Receptor Expressing T Lymphocytes" + intervention "CD19CAR-28-zeta T cells".
    ("NCT00586391", "therapy", ["CD19"], {}),
    # "CTLs Expressing GD-2 Specific Chimeric T Cell Receptors": a first-generation GD2 CAR on EBV-CTLs.
    ("NCT00085930", "therapy", ["GD2"], {"branch": "solid-tumor"}),
    # "Long-Term Follow-up Study for Patients Previously Treated With JCAR015".
    ("NCT02813252", "follow_up", ["CD19"], {}),
    # "Anakinra for the Prevention of CRS ... Receiving CD19-Targeted CAR-T": the CAR is the setting.
    ("NCT04359784", "ancillary", None, {}),
    # Defibrotide to prevent CAR-T-associated neurotoxicity.
    ("NCT03954106", "ancillary", None, {}),
    # Odronextamab (a bispecific antibody); no CAR product anywhere in the record.
    ("NCT02290951", "none", [], {}),
    # AUTO3 = CD19/CD22 bicistronic CAR; named product.
    ("NCT03289455", "therapy", ["CD19", "CD22"], {"target_strategy": "multi-specific-CAR"}),
    # "CD20-CD19 Compound CAR (cCAR) T Cells".
    ("NCT04156178", "therapy", ["CD20", "CD19"], {"target_strategy": "multi-specific-CAR"}),
    # "4SCAR19/22 T cells" with interleukin-2: a CAR given within the protocol, CD19 and CD22.
    ("NCT03098355", "therapy", ["CD19", "CD22"], {"target_strategy": "multi-specific-CAR"}),
    # "Anti-CD19:TCRζ Chimeric Antigen Receptor-T Cells" (interventions say only "CD19 cells").
    ("NCT02992834", "therapy", ["CD19"], {}),
]


@pytest.mark.parametrize(("nct", "relation", "targets", "extra"), RECON_CASES)
def test_recon_records(nct: str, relation: str, targets: list[str] | None, extra: dict[str, str]) -> None:
    c = recon()[nct]  # the snapshot is fixed: a missing record is a failure, not a skip
    assert c["relation"] == relation, c["evidence"]
    if targets is not None:
        assert sorted(c["targets"]) == sorted(targets), c["evidence"]
    for key, value in extra.items():
        assert c[key] == value, (key, c["evidence"])  # type: ignore[literal-required]


def test_the_car_product_under_another_name_is_not_a_co_intervention() -> None:
    # "genetically engineered lymphocyte therapy" is the anti-CD20 CAR-T of the first intervention.
    c = recon()["NCT01735604"]
    assert (c["relation"], c["targets"], c["combinations"]) == ("therapy", ["CD20"], []), c["evidence"]
    # "Adoptive Transfer of re-directed T cells", "Production of Genetically-modified T cells", "modified T
    # cells": the CAR product again (NCT02498912 also lists a catheter insertion, which stays other-drug).
    for nct, name in (
        ("NCT01722149", "Adoptive Transfer of re-directed T cells"),
        ("NCT02498912", "Production of Genetically-modified T cells"),
        ("NCT01860937", "modified T cells"),
    ):
        combos = [e["text"] for e in recon()[nct]["evidence"] if e["decision"] == "combinations"]
        assert name not in combos, (nct, combos)
    # NCT03029273 gives a NY-ESO-1 TCR-T; its summary cites "side effects found in CAR-T trials", background
    # (issue 13: before, it was read as a CAR-T trial with the TCR-T as another drug).
    assert recon()["NCT03029273"]["relation"] == "none"


def test_recon_corpus_counts() -> None:
    # The monitor corpus (every record a CAR trial by the peers' screening); docs/accuracy.md has the same counts.
    cs = list(recon().values())
    relations = Counter(c["relation"] for c in cs)
    # Issue 13 moved 51 records (before: 2,397 / 28 / 54 / 108): 38 `none` are therapy (a code name or an
    # engineered-cell intervention of a CAR developer, a shorthand such as CAR-20/19-T); 2 `none` and 2 therapy
    # are follow_up (long-term follow-up or study of a developer's or a named product); 3 `none` and 1 therapy
    # are ancillary (CAR-T only as the setting; a bispecific bridging to CAR-T); 5 therapy are `none` (CAR-T
    # only as background: two TCR-T trials, a switch-receptor trial, two drug trials).
    assert relations == {"therapy": 2427, "follow_up": 32, "ancillary": 58, "none": 70}
    therapy = [c for c in cs if c["relation"] == "therapy"]
    assert sum(c["targets"] not in ([], ["unknown"]) for c in therapy) == 2143
    assert all(e["rule"] for c in cs for e in c["evidence"])


# -- hard negatives -----------------------------------------------------------------------------

LEUKEMIA_CAR_TRIALS = {
    "NCT02650414", "NCT03937544", "NCT05942599", "NCT04100187", "NCT04272125", "NCT05480501", "NCT05309213",
    "NCT04265963", "NCT05164042", "NCT05397184", "NCT05993949", "NCT04571138", "NCT05507827", "NCT04835519",
    "NCT02349698",
}  # fmt: skip
# They mention CAR-T only in eligibility criteria (prior CAR-T) or are STAR-T (a TCR-based receptor).
LEUKEMIA_HARD_NEGATIVES = {
    "NCT05086315", "NCT05536349", "NCT05521087", "NCT05751044", "NCT05740449", "NCT05745714", "NCT05658640",
    "NCT05326516", "NCT05739409",
}  # fmt: skip


def test_leukemia_query_hard_negatives_and_positives() -> None:
    cs = leukemia()
    for nct in LEUKEMIA_HARD_NEGATIVES:
        assert cs[nct]["relation"] == "none", (nct, cs[nct]["evidence"])
    for nct in LEUKEMIA_CAR_TRIALS:
        assert cs[nct]["relation"] in ("therapy", "follow_up"), (nct, cs[nct]["evidence"])
    others = set(cs) - LEUKEMIA_CAR_TRIALS
    assert all(cs[n]["relation"] == "none" for n in others)
    assert cs["NCT05397184"]["targets"] == ["CD7"]  # "Base Edited CAR7 T Cells"
    assert cs["NCT05942599"]["targets"] == ["CD33"]  # "BE CAR33 T Cells"
    assert cs["NCT05507827"]["product_source"] == "allogeneic"  # donor-derived CD19/CD22-CAR T cells
    assert cs["NCT05507827"]["target_strategy"] == "multi-specific-CAR"  # bivalent CD19/CD22 vector


def test_legacy_b_cell_query_non_car_trials() -> None:
    # Read by the ClinicalTrials.gov CSV reader, as `cartatlas import` and docs/accuracy.md read it.
    cs = {c["trial_id"]: c for c in (classify_trial(t) for t in iter_trials([LEGACY_CSV], []))}
    # Chimeric anti-CD20 antibodies, rituximab biosimilars and bispecifics are not CAR products.
    for nct in ("NCT02206308", "NCT01459887", "NCT03670888", "NCT03625037", "NCT00532259", "NCT02106091"):
        assert cs[nct]["relation"] == "none", (nct, cs[nct]["evidence"])
    # Pembrolizumab after CD19 CAR-T failure: ancillary (peers exclude it too).
    assert cs["NCT02650999"]["relation"] == "ancillary"
    for nct, target in (
        ("NCT03101709", "CD19"),
        ("NCT02965157", "CD20"),
        ("NCT03692767", "CD22"),
        ("NCT01626495", "CD19"),
    ):
        assert cs[nct]["relation"] == "therapy"
        assert cs[nct]["targets"] == [target]
    assert cs["NCT03166878"]["product_source"] == "allogeneic"  # UCART019
    assert cs["NCT02656147"]["platforms"] == ["CAR-gdT"]  # CD19 CAR γδT cells
    # The 2018 layout mixes primary and secondary outcomes in one cell, which the reader leaves out: these two
    # name their CAR only there ("chimeric T cell receptor", "CD19CAR").  NCT00621452 is still read as a CAR
    # trial, from its "genetically engineered lymphocyte therapy" of a CAR developer (Fred Hutch, issue 13);
    # NCT00709033 ("PBTLs and EBV-CTLs") says nothing that makes them engineered.
    assert cs["NCT00621452"]["relation"] == "therapy" and cs["NCT00621452"]["confidence"] == "low"
    assert cs["NCT00709033"]["relation"] == "none"
    # Issue 13: 7 more CAR trials (before: 85 therapy, 914 none): NCT00621452, NCT01318317 (engineered
    # lymphocytes), NCT00968760 (CD19-specific T cells of MD Anderson), NCT03156101 and NCT03265106 (BinD19,
    # BinDeBio), NCT03019055 ("CAR-20/19-T") and NCT03375619 (its long-term follow-up).
    assert Counter(c["relation"] for c in cs.values()) == {"therapy": 91, "follow_up": 1, "ancillary": 1, "none": 907}
