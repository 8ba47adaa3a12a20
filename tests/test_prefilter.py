"""The screening prefilter (issue 16) never changes a classification.

Every sample record is classified with and without the prefilter and the whole
Classification (labels, flags, evidence) must be equal.  Property tests insert
a term of the knowledge tables (read from the CSVs, not from the prefilter, so
that dropping a pattern from the prefilter fails them) into a record the
prefilter lets through, in random case, field and place: the prefilter must
then send it to the full rules.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any, cast

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cartatlas.classify import classify_trial, knowledge
from cartatlas.classify.knowledge import normalise_display, split_list
from cartatlas.classify.prefilter import quick_context, screen_study
from cartatlas.classify.text import ELIGIBILITY, build_segments
from cartatlas.knowledge import read_table
from cartatlas.model import RawRecord, Trial
from cartatlas.normalise.ctgov import normalise_ctgov, screening_view
from cartatlas.normalise.formats import format_spec
from cartatlas.sources.files import iter_paths, read_path

DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


@functools.cache
def sample_trials() -> list[Trial]:
    """Every trial record of the samples, in every format the importers read (PubMed holds articles)."""
    out: list[Trial] = []
    for path, _ in iter_paths([DATA / "ctgov", DATA / "ictrp", DATA / "chictr"]):
        for item in read_path(path, strict=False):
            if isinstance(item, RawRecord):
                out.append(format_spec(item.format).to_trial(item.payload))
    return out


def test_every_sample_record_is_classified_identically_with_the_prefilter() -> None:
    kb = knowledge()
    trials = sample_trials()
    assert len(trials) == 7206
    quick = 0
    for trial in trials:
        full = classify_trial(trial, kb)
        ctx = quick_context(trial, kb)
        if ctx is not None:
            assert classify_trial(trial, kb, ctx=ctx) == full, trial.get("trial_id")
            quick += 1
    # Most records that are not CAR trials take the quick path (4,090 of 4,577 with relation none in 2026-12).
    assert quick > 3500


@functools.cache
def quick_records() -> list[Trial]:
    """Sample records the prefilter lets through, one in 40 (all formats)."""
    kb = knowledge()
    return [t for t in sample_trials()[::40] if quick_context(t, kb) is not None]


@functools.cache
def knowledge_terms() -> list[str]:
    """Terms that must reach the full rules, straight from the knowledge tables."""
    terms: list[str] = []
    for row in read_table("products.csv"):
        terms += [row["name"], *split_list(row.get("aliases")), *split_list(row.get("chinese_names"))]
        terms += split_list(row.get("ambiguous_aliases"))
    for row in read_table("platform_terms.csv"):
        if row["kind"].strip() in ("car", "caar", "car_weak"):
            terms += [row["term"], *split_list(row.get("exact_case"))]
    for row in read_table("car_other_meanings.csv"):
        terms.append(row["phrase"])
    for row in read_table("antigens.csv"):
        if "component" not in split_list(row.get("lineage")):
            symbol = row["symbol"].strip()
            terms += [
                f"{symbol}CAR",
                f"{symbol}-CART",
                f"CAR-{symbol}",
                f"CART{symbol[2:]}" if symbol[:2] == "CD" and symbol[2:].isdigit() else "",
            ]
    terms += ["chimeric antigen receptor", "嵌合抗原受体T细胞", "19-28z", "4-1BBζ", "zamtocabtagene autoleucel"]
    terms += ["T cells genetically targeted to the CD19 antigen", "genetically modified T cells", "CD19/CD22", "CART19"]
    return sorted({t.strip() for t in terms if t.strip()})


@functools.cache
def code_names() -> list[str]:
    """Codes with a CAR developer's prefix: the code-name rule reads them in titles and interventions."""
    return sorted({row["prefix"] + "101" for row in read_table("code_prefixes.csv")})


FIELDS = ("brief_title", "official_title", "brief_summary", "detailed_description", "conditions", "keywords", "iv_name")


def _insert(text: str | None, term: str, where: float) -> str:
    text = text or ""
    cut = int(len(text) * where)
    while 0 < cut < len(text) and text[cut - 1] != " ":
        cut -= 1
    return text[:cut] + " " + term + " " + text[cut:]


def _with_term(trial: Trial, field: str, term: str, where: float) -> Trial:
    t = cast(dict[str, Any], copy.deepcopy(trial))
    if field in ("conditions", "keywords"):
        t[field] = [*(t.get(field) or []), term]
    elif field == "iv_name":
        ivs = list(t.get("interventions") or [])
        if ivs and isinstance(ivs[0], dict):
            ivs[0] = {**ivs[0], "name": _insert(ivs[0].get("name"), term, where)}
        else:
            ivs = [{"type": "DRUG", "name": term, "other_names": [], "description": None}]
        t["interventions"] = ivs
    else:
        t[field] = _insert(t.get(field), term, where)
    return cast(Trial, t)


def _outside_eligibility(trial: Trial, term: str) -> bool:
    norm = normalise_display(term)
    return any(seg.role != ELIGIBILITY and norm in seg.norm for seg in build_segments(trial))


def _random_case(term: str, flips: list[bool]) -> str:
    return "".join(c.upper() if f else c.lower() for c, f in zip(term, flips + [False] * len(term), strict=False))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    record=st.integers(min_value=0, max_value=10_000),
    term=st.integers(min_value=0, max_value=100_000),
    field=st.sampled_from(FIELDS),
    where=st.floats(min_value=0, max_value=1),
    flips=st.lists(st.booleans(), max_size=40),
)
def test_a_knowledge_term_anywhere_reaches_the_full_rules(
    record: int, term: int, field: str, where: float, flips: list[bool]
) -> None:
    kb = knowledge()
    records, terms = quick_records(), knowledge_terms()
    trial = records[record % len(records)]
    word = _random_case(terms[term % len(terms)], flips)
    changed = _with_term(trial, field, word, where)
    # Text after an eligibility heading of a summary is eligibility, which the rules only read for CAR words.
    assume(_outside_eligibility(changed, word))
    assert quick_context(changed, kb) is None, (word, field)


@settings(max_examples=100, deadline=None)
@given(
    record=st.integers(min_value=0, max_value=10_000),
    term=st.integers(min_value=0, max_value=100_000),
    field=st.sampled_from(("brief_title", "official_title", "iv_name")),
    where=st.floats(min_value=0, max_value=1),
)
def test_a_developer_code_in_a_title_or_intervention_reaches_the_full_rules(
    record: int, term: int, field: str, where: float
) -> None:
    records, codes = quick_records(), code_names()
    changed = _with_term(records[record % len(records)], field, codes[term % len(codes)], where)
    assume(_outside_eligibility(changed, codes[term % len(codes)]))
    assert quick_context(changed, knowledge()) is None


@settings(max_examples=80, deadline=None)
@given(
    record=st.integers(min_value=0, max_value=10_000),
    term=st.integers(min_value=0, max_value=100_000),
    code=st.sampled_from(["", "XY-1234", "ABC101 cell injection", "genetically engineered lymphocytes"]),
    follow_up=st.booleans(),
)
def test_a_car_developer_as_sponsor_keeps_the_labels(record: int, term: int, code: str, follow_up: bool) -> None:
    """A CAR developer's record reaches the full rules when a code, cells or a follow-up title may be read."""
    kb = knowledge()
    records = quick_records()
    names = sorted({n for row in read_table("developers.csv") for n in [row["name"], *split_list(row.get("aliases"))]})
    t = cast(dict[str, Any], copy.deepcopy(records[record % len(records)]))
    t["lead_sponsor"] = names[term % len(names)]
    if code:
        t["interventions"] = [{"type": "DRUG", "name": code, "other_names": [], "description": None}]
    if follow_up:
        t["brief_title"] = "Long-term Follow-up Study of Participants"
    trial = cast(Trial, t)
    ctx = quick_context(trial, kb)
    if code or follow_up:
        assert ctx is None
    elif ctx is not None:
        assert classify_trial(trial, kb, ctx=ctx) == classify_trial(trial, kb)


@settings(max_examples=150, deadline=None)
@given(
    record=st.integers(min_value=0, max_value=10_000),
    term=st.integers(min_value=0, max_value=100_000),
    field=st.sampled_from(FIELDS),
    where=st.floats(min_value=0, max_value=1),
)
def test_labels_with_an_inserted_term_are_the_full_rules_labels(
    record: int, term: int, field: str, where: float
) -> None:
    """Whatever the prefilter decides about a changed record, the classification is the full rules' one."""
    kb = knowledge()
    records, terms = quick_records(), knowledge_terms()
    changed = _with_term(records[record % len(records)], field, terms[term % len(terms)], where)
    ctx = quick_context(changed, kb)
    if ctx is not None:
        assert classify_trial(changed, kb, ctx=ctx) == classify_trial(changed, kb)


@functools.cache
def v2_studies() -> list[dict[str, Any]]:
    """Every API v2 study of the samples: the searches and the 2,587 CAR trials of the monitor corpus."""
    out: list[dict[str, Any]] = []
    for path, _ in iter_paths([DATA / "ctgov"]):
        for item in read_path(path, strict=False):
            if isinstance(item, RawRecord) and item.format == "ctgov_v2":
                out.append(item.payload)
    return out


def test_every_v2_study_screened_from_its_view_is_classified_as_when_normalised() -> None:
    kb = knowledge()
    studies = v2_studies()
    assert len(studies) == 2761
    viewed = 0
    for study in studies:
        full = classify_trial(normalise_ctgov(study), kb)
        assert screen_study(study, kb) == full, full["trial_id"]
        viewed += quick_context(screening_view(study), kb) is not None
    assert viewed > 50  # the searches' studies that are not CAR trials (the monitor corpus is all CAR trials)


def test_cartatlas_classify_prints_the_full_rules_classifications(tmp_path: Path) -> None:
    """`cartatlas classify` prints the full rules' classification of every API v2 study."""
    from typer.testing import CliRunner

    from cartatlas.cli import app

    out = tmp_path / "out.jsonl"
    folder = DATA / "ctgov" / "api_v2"
    result = CliRunner().invoke(app, ["classify", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    printed = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    expected = [
        classify_trial(format_spec(item.format).to_trial(item.payload))
        for path, _ in iter_paths([folder])
        for item in read_path(path, strict=False)
        if isinstance(item, RawRecord)
    ]
    assert len(printed) == len(expected) == 161
    assert printed == [orjson.loads(orjson.dumps(c)) for c in expected]
