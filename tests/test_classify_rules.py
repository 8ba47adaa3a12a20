"""Screening rules on small hand-made records (every fixture here is invented for the test).

Real registry records with worked-out answers are in test_classify_records.py.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from cartatlas.classify import (
    BRANCHES,
    PLATFORMS,
    PRODUCT_SOURCES,
    RELATIONS,
    TARGET_STRATEGIES,
    classify_trial,
    knowledge,
    load_knowledge,
)
from cartatlas.classify.antigen_names import antigen_key, antigen_spellings
from cartatlas.classify.knowledge import normalise_term
from cartatlas.model import Trial

KNOWLEDGE_DIR = Path(__file__).resolve().parents[1] / "cartatlas" / "knowledge"


def trial(
    title: str = "",
    interventions: Iterable[str] = (),
    summary: str = "",
    conditions: Iterable[str] = (),
    eligibility: str = "",
    **extra: Any,
) -> Trial:
    """A hand-made record with only the fields a rule reads."""
    record: dict[str, Any] = {
        "trial_id": "TEST-1",
        "registry": "test",
        "brief_title": title,
        "brief_summary": summary,
        "conditions": list(conditions),
        "interventions": [{"type": None, "name": n, "other_names": [], "description": None} for n in interventions],
        "arm_groups": [],
        "keywords": [],
        "primary_outcomes": [],
        "eligibility_criteria": eligibility,
    }
    record.update(extra)
    return cast(Trial, record)


# -- relation ------------------------------------------------------------------------------


def test_car_t_product_in_title_and_intervention_is_therapy() -> None:
    c = classify_trial(trial("CD19 CAR-T Cells for Relapsed B-ALL", ["CD19 CAR-T cells"], conditions=["B-ALL"]))
    assert c["relation"] == "therapy"
    assert c["targets"] == ["CD19"]
    assert c["platforms"] == ["CAR-T"]
    assert c["branch"] == "heme-malignancy"
    assert "B-ALL" in c["disease_entity"]
    assert any(e["decision"] == "relation" and e["field"].startswith("interventions") for e in c["evidence"])


def test_car_only_in_eligibility_is_none() -> None:
    c = classify_trial(
        trial(
            "Venetoclax Plus Chemotherapy in Relapsed ALL",
            ["Venetoclax", "Cytarabine"],
            eligibility="Exclusion Criteria: prior CAR-T cell therapy within 30 days",
        )
    )
    assert c["relation"] == "none"
    assert c["targets"] == []
    assert "car-words-present" in c["flags"]


def test_history_of_car_t_makes_a_drug_trial_ancillary() -> None:
    c = classify_trial(trial("Glofitamab for Lymphoma Relapsed After CD19 CAR-T Therapy", ["Glofitamab"]))
    assert c["relation"] == "ancillary"
    assert [e["rule"] for e in c["evidence"] if e["decision"] == "relation"] == [
        "relation.car_named_as_history_or_setting[prior:relapsed after]"
    ]
    # The labels of an ancillary trial describe the CAR-T it is about (here the history): CD19, no combination.
    assert (c["targets"], c["platforms"], c["combinations"]) == (["CD19"], ["CAR-T"], [])


def test_prior_car_t_in_summary_only_is_none() -> None:
    c = classify_trial(
        trial(
            "Talquetamab in Myeloma", ["Talquetamab"], summary="Patients who failed prior BCMA CAR-T therapy may enrol."
        )
    )
    assert c["relation"] == "none"


def test_car_t_failure_and_toxicity_phrases() -> None:
    assert (
        classify_trial(trial("Pembrolizumab for CAR-T Failure in DLBCL", ["Pembrolizumab"]))["relation"] == "ancillary"
    )
    c = classify_trial(trial("Anakinra to Prevent CAR T-cell Related Neurotoxicity", ["Anakinra"]))
    assert c["relation"] == "ancillary"


def test_long_term_follow_up_is_follow_up() -> None:
    c = classify_trial(trial("Long-term Follow-up of Patients Who Received CD19 CAR-T Cells", ["No intervention"]))
    assert c["relation"] == "follow_up"
    assert c["targets"] == ["CD19"]


def test_other_meanings_of_car_are_none() -> None:
    for title in (
        "Coronary Artery Revascularization (CAR) in Diabetes",
        "Computer-Aided Detection (CAR) of Polyps",
        "Constitutive Androstane Receptor (CAR) Activation by Phenobarbital",
        "Child Car Seat Use After Discharge",
        "Chimeric Anti-CD20 Monoclonal Antibody in Lymphoma",
    ):
        c = classify_trial(trial(title, ["Drug X"]))
        assert c["relation"] == "none", title


def test_tcr_t_and_til_are_none() -> None:
    assert classify_trial(trial("NY-ESO-1 TCR-T Cells in Sarcoma", ["TCR-T cells"]))["relation"] == "none"
    assert classify_trial(trial("Tumor Infiltrating Lymphocytes in Melanoma", ["TIL"]))["relation"] == "none"


# -- targets and word boundaries --------------------------------------------------------------


def test_word_boundaries_for_antigens() -> None:
    assert classify_trial(trial("EGFRvIII CAR-T in Glioblastoma", ["EGFRvIII CAR-T"]))["targets"] == ["EGFRvIII"]
    assert classify_trial(trial("EGFR CAR-T in Lung Cancer", ["EGFR CAR-T"]))["targets"] == ["EGFR"]
    # CD190 is not CD19; the CAR product's antigen is then undisclosed.
    assert classify_trial(trial("CD190 CAR-T Cells", ["CAR-T cells"]))["targets"] == ["unknown"]


def test_car_terms_match_whole_tokens() -> None:
    # CAR inside a longer word: an ECMO study, Medicare, a French word with a diacritic.
    for title in (
        "ExtraCorporeal Membrane Oxygenation for COVID-19 - ECMOCARD Study",
        "Costs of CAR-like Drugs in Medicare Beneficiaries",
        "ÉCART THÉRAPEUTIQUE DES PATIENTS",
        "ECMOCARD研究",
    ):
        c = classify_trial(trial(title, ["Standard care"]))
        assert c["relation"] == "none", (title, c["evidence"])
    # Han characters are token boundaries: CAR-T next to Chinese text is a CAR-T.
    c = classify_trial(trial("CD19 CAR-T细胞治疗复发难治B细胞淋巴瘤", ["CD19 CAR-T细胞"]))
    assert (c["relation"], c["targets"], c["platforms"]) == ("therapy", ["CD19"], ["CAR-T"])
    # A glued code name is one token: a prefix, CAR-T and the antigen number.
    c = classify_trial(trial("huCART19 in Lymphoma", ["huCART19"]))
    assert (c["relation"], c["targets"]) == ("therapy", ["CD19"])


def test_chinese_sponsor_spellings() -> None:
    for name in ("CART19", "CAR-T19", "CD19-CART", "CD19CAR-T", "CART-19", "anti-CD19 CAR"):
        c = classify_trial(trial(f"{name} Cells in Lymphoma", [name]))
        assert c["relation"] == "therapy", name
        assert c["targets"] == ["CD19"], name
    c = classify_trial(trial("Allogenic CD7 CAR-T for T-ALL", ["allogenic CD7 CAR-T"]))
    assert c["product_source"] == "allogeneic"
    assert c["disease_entity"] == ["T-ALL"]


def test_synonyms_map_to_canonical_symbols() -> None:
    assert classify_trial(trial("CLDN18.2 CAR-T in Gastric Cancer", ["CAR-T"]))["targets"] == ["Claudin18.2"]
    assert classify_trial(trial("TNFRSF17-directed CAR-T for Myeloma", ["CAR-T"]))["targets"] == ["BCMA"]
    assert classify_trial(trial("CD276 CAR-T in Neuroblastoma", ["CAR-T"]))["targets"] == ["B7-H3"]
    assert classify_trial(trial("MSLN-targeted CAR-T in Mesothelioma", ["CAR-T"]))["targets"] == ["Mesothelin"]


ANTIGEN_SPELLINGS = [
    ("CD 19", "CD19"),
    ("CD-19", "CD19"),
    ("cd19", "CD19"),
    ("GD-2", "GD2"),
    ("GD 2", "GD2"),
    ("IL13Rα2", "IL13Ra2"),
    ("IL13Ralpha2", "IL13Ra2"),
    ("IL-13Ra2", "IL13Ra2"),
    ("IL13 Rα2", "IL13Ra2"),
    ("IL-13 Rα-2", "IL13Ra2"),
    ("B7-H3", "B7-H3"),
    ("B7H3", "B7-H3"),
    ("B7 H3", "B7-H3"),
    ("CD-276", "B7-H3"),
    ("Claudin 18.2", "Claudin18.2"),
    ("CLDN18.2", "Claudin18.2"),
    ("CLDN 18.2", "Claudin18.2"),
    ("GPRC-5D", "GPRC5D"),
    ("GPRC 5 D", "GPRC5D"),
    ("HER-2", "HER2"),
    ("FR-α", "FOLR1"),
    ("FRalpha", "FOLR1"),
    ("CD8α", None),  # a CAR component (the hinge), never a target
]


def test_antigen_spellings_are_one_antigen() -> None:
    kb = knowledge()
    for spelling, symbol in ANTIGEN_SPELLINGS:
        c = classify_trial(trial(f"{spelling} CAR-T Cells in Cancer", [f"{spelling} CAR-T cells"]))
        assert c["targets"] == ([symbol] if symbol else ["unknown"]), (spelling, c["evidence"])
        assert kb.antigen_symbol(spelling) == (symbol or "CD8"), spelling


def test_antigen_table_lists_names_not_spellings() -> None:
    # Spellings (CD-19, GD-2, IL-13Ra2, IL13Ralpha2) come from antigen_spellings; a row lists only names.
    with (KNOWLEDGE_DIR / "antigens.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            names = [row["symbol"], *[n for n in (row["synonyms"] + "|" + row["exact_case"]).split("|") if n]]
            names = list(dict.fromkeys(names))
            for name in names[1:]:
                others = [m for m in names if m != name]
                spelt = [m for m in others if normalise_term(name) in map(normalise_term, antigen_spellings(m))]
                assert not spelt, f"{row['symbol']}: {name!r} is a spelling of {spelt}"


def _respell(symbol: str, data: st.DataObject) -> str:
    """The symbol with a separator or none at every letter/digit boundary, in any case."""
    out = ""
    for i, ch in enumerate(symbol):
        if i and symbol[i - 1].isalpha() != ch.isalpha() and (symbol[i - 1].isalnum() and ch.isalnum()):
            out += data.draw(st.sampled_from(["", "-", " "]))
        out += ch
    return data.draw(st.sampled_from([out, out.upper(), out.lower()]))


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_spelling_of_an_antigen_symbol_is_found(data: st.DataObject) -> None:
    kb = knowledge()
    symbols = sorted(s for s in kb.target_symbols if s not in ("FAP", "MET", "AXL"))  # upper-case-only names
    symbol = data.draw(st.sampled_from(symbols))
    spelling = _respell(symbol, data)
    assert antigen_key(spelling) == antigen_key(symbol)
    c = classify_trial(trial(f"Anti-{spelling} CAR-T Cells in Cancer", [f"{spelling} CAR-T cells"]))
    assert symbol in c["targets"], (spelling, c["evidence"])


def test_components_and_negated_antigens_are_not_targets() -> None:
    c = classify_trial(trial("CD19 CAR-T With CD28 and 4-1BB Domains and a Truncated EGFR Switch", ["CAR-T"]))
    assert c["targets"] == ["CD19"]
    c = classify_trial(trial("CD22 CAR-T Cells for CD19-negative Relapse of ALL", ["CD22 CAR-T"]))
    assert c["targets"] == ["CD22"]


def test_named_products_give_targets_and_source() -> None:
    c = classify_trial(trial("Ciltacabtagene Autoleucel in Newly Diagnosed Myeloma", ["cilta-cel"]))
    assert (c["targets"], c["product_source"], c["products"]) == (["BCMA"], "autologous", ["ciltacabtagene autoleucel"])
    c = classify_trial(trial("UCART19 in Relapsed B-ALL", ["UCART19"]))
    assert c["product_source"] == "allogeneic"
    c = classify_trial(trial("GC012F in Multiple Myeloma", ["GC012F"]))
    assert (sorted(c["targets"]), c["target_strategy"]) == (["BCMA", "CD19"], "multi-specific-CAR")


def test_target_strategy() -> None:
    c = classify_trial(trial("Tandem CD19/CD22 CAR-T Cells", ["CD19/CD22 CAR-T"]))
    assert c["target_strategy"] == "multi-specific-CAR"
    c = classify_trial(trial("Sequential Infusion of CD19 and CD22 CAR-T Cells", ["CD19 CAR-T", "CD22 CAR-T"]))
    assert c["target_strategy"] == "co-administered"


def test_transplant_words_do_not_make_the_product_allogeneic() -> None:
    c = classify_trial(
        trial("CD19 CAR-T Bridging to Allogeneic Stem Cell Transplantation", ["CD19 CAR-T", "Allo-HSCT"])
    )
    assert c["product_source"] != "allogeneic"
    assert "HSCT" in c["combinations"]


def test_an_engineered_cell_intervention_is_the_car_product_not_a_combination() -> None:
    def typed(names: list[tuple[str, str | None]]) -> list[dict[str, Any]]:
        return [{"type": t, "name": n, "other_names": [], "description": None} for n, t in names]

    for other, itype in (
        ("Genetically engineered lymphocyte therapy", "GENETIC"),
        ("Gene-modified autologous T cells", "BIOLOGICAL"),
        ("Transduced T lymphocytes", None),
        ("CAR-20/19-T cells (1 x10^6 cells/kg)", "BIOLOGICAL"),
    ):
        record = trial("CD19 CAR-T in Lymphoma", interventions=())
        record["interventions"] = typed([("CD19 CAR-T cells", "BIOLOGICAL"), (other, itype)])  # type: ignore[typeddict-item]
        c = classify_trial(record)
        assert (c["relation"], c["combinations"]) == ("therapy", []), (other, c["evidence"])
    for other in ("Ibrutinib", "Donor lymphocyte infusion", "NY-ESO-1 TCR-transduced T cells"):
        record = trial("CD19 CAR-T in Lymphoma", interventions=())
        record["interventions"] = typed([("CD19 CAR-T cells", "BIOLOGICAL"), (other, "BIOLOGICAL")])  # type: ignore[typeddict-item]
        assert classify_trial(record)["combinations"] == ["other-drug"], other


def test_platforms() -> None:
    assert classify_trial(trial("Anti-CD19 CAR-NK Cells in Lymphoma", ["CAR-NK"]))["platforms"] == ["CAR-NK"]
    assert classify_trial(trial("DSG3-CAART for Pemphigus", ["DSG3-CAART"]))["platforms"] == ["CAAR-T"]
    c = classify_trial(trial("In Vivo CD19 CAR-T Generation With Lentiviral Vector", ["UB-VV111"]))
    assert (c["platforms"], c["product_source"]) == (["in-vivo-CAR"], "in-vivo")
    # "expansion in vivo" is not an in vivo CAR.
    c = classify_trial(trial("CD19 CAR-T", ["CD19 CAR-T"], summary="We measure CAR-T expansion in vivo."))
    assert c["platforms"] == ["CAR-T"]


# -- Chinese text (hand-made snippets in the style of ChiCTR records) ----------------------------


def test_chinese_text() -> None:
    c = classify_trial(trial("靶向CD19嵌合抗原受体T细胞治疗复发难治B细胞急性淋巴细胞白血病", ["CAR-T细胞"]))
    assert c["relation"] == "therapy"
    assert c["targets"] == ["CD19"]
    assert c["disease_entity"] == ["B-ALL"]
    c = classify_trial(trial("同种异体CD7 CAR-T细胞治疗T细胞急性淋巴细胞白血病", ["异体CAR-T"]))
    assert c["product_source"] == "allogeneic"
    c = classify_trial(trial("自体BCMA CAR-T细胞治疗多发性骨髓瘤", ["CAR-T"]))
    assert (c["product_source"], c["disease_entity"]) == ("autologous", ["MM"])
    c = classify_trial(trial("CD19/CD22双靶点CAR-T细胞治疗淋巴瘤", ["CAR-T"]))
    assert c["target_strategy"] == "multi-specific-CAR"
    c = classify_trial(trial("既往接受过CAR-T治疗后复发的淋巴瘤患者使用泽布替尼", ["泽布替尼"]))
    assert c["relation"] != "therapy"


# -- knowledge base: one-line data changes -------------------------------------------------------


def _reader_with_extra_line(tmp_path: Path, table: str, line: str) -> Any:
    for f in KNOWLEDGE_DIR.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    with (tmp_path / table).open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")

    def reader(name: str) -> Iterable[dict[str, str]]:
        with (tmp_path / name).open(encoding="utf-8", newline="") as fh:
            yield from csv.DictReader(fh)

    return reader


def test_adding_a_product_is_one_line(tmp_path: Path) -> None:
    record = trial("Phase 1 Study of ZX-9999 in Gastric Cancer", ["ZX-9999"])
    assert classify_trial(record)["relation"] == "none"
    kb = load_knowledge(
        _reader_with_extra_line(
            tmp_path,
            "products.csv",
            "ZX-9999,ZX9999,Claudin18.2,CAR-T,allogeneic,investigational,Example Bio,test fixture (invented product)",
        )
    )
    c = classify_trial(record, kb)
    assert (c["relation"], c["targets"], c["product_source"]) == ("therapy", ["Claudin18.2"], "allogeneic")


def test_adding_a_synonym_is_one_line(tmp_path: Path) -> None:
    record = trial("Xenoantigen-Q CAR-T in Ovarian Cancer", ["CAR-T"])
    assert classify_trial(record)["targets"] == ["unknown"]
    kb = load_knowledge(
        _reader_with_extra_line(
            tmp_path, "antigens.csv", "XQ1,xenoantigen Q,solid,Xenoantigen-Q,,test fixture (invented)"
        )
    )
    assert classify_trial(record, kb)["targets"] == ["XQ1"]


def test_every_knowledge_row_has_a_source() -> None:
    for f in KNOWLEDGE_DIR.glob("*.csv"):
        with f.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if "source" in row:
                    assert (row["source"] or "").strip(), f"{f.name}: {row}"


# -- properties ----------------------------------------------------------------------------------

TEXT = st.text(max_size=200)
WORDS = st.lists(
    st.sampled_from(
        ["CAR-T", "CD19", "after", "prior", "BCMA", "NK", "CART19", "allogeneic", "lymphoma", "嵌合抗原受体", "-", "/"]
    ),
    max_size=12,
).map(" ".join)


def _valid(c: Any) -> None:
    kb = knowledge()
    assert c["relation"] in RELATIONS
    assert set(c["platforms"]) <= set(PLATFORMS)
    assert c["target_strategy"] in TARGET_STRATEGIES
    assert c["branch"] in BRANCHES
    assert c["product_source"] in PRODUCT_SOURCES
    for t in c["targets"]:
        assert t == "unknown" or kb.is_target_symbol(t), t
    if c["targets"] == ["unknown"]:
        assert c["relation"] != "none"


@settings(max_examples=150, deadline=None)
@given(title=st.one_of(TEXT, WORDS), summary=st.one_of(TEXT, WORDS), names=st.lists(st.one_of(TEXT, WORDS), max_size=3))
def test_never_raises_and_values_are_in_vocabulary(title: str, summary: str, names: list[str]) -> None:
    _valid(classify_trial(trial(title, names, summary=summary, conditions=[summary])))


@settings(max_examples=100, deadline=None)
@given(extra=st.sampled_from(["The study is open in Germany.", "Enrolment is 30.", "Visits are monthly.", "随访2年。"]))
def test_unrelated_sentence_never_removes_a_target(extra: str) -> None:
    base = trial("Anti-BCMA CAR-T Cells in Myeloma", ["BCMA CAR-T"], summary="Patients receive BCMA CAR-T cells.")
    before = set(classify_trial(base)["targets"])
    longer = trial(
        "Anti-BCMA CAR-T Cells in Myeloma", ["BCMA CAR-T"], summary="Patients receive BCMA CAR-T cells. " + extra
    )
    assert before <= set(classify_trial(longer)["targets"])


@settings(max_examples=60, deadline=None)
@given(
    fields=st.dictionaries(
        st.sampled_from(["brief_title", "conditions", "interventions", "arm_groups", "keywords"]), st.none()
    )
)
def test_missing_or_null_fields_are_tolerated(fields: dict[str, None]) -> None:
    record = dict(trial("CD19 CAR-T", ["CD19 CAR-T"]))
    record.update(fields)
    _valid(classify_trial(cast(Trial, record)))
