"""The screening's work stays linear in the text, and what it keeps per field is bounded (issue 11, part 4).

A field of one CAR phrase repeated thousands of times once cost minutes and
gigabytes: every antigen was compared with every CAR mention of its field,
and each comparison copied the text between them.  Work is counted here as
function calls under the profiler (deterministic, unlike time): doubling the
text must no more than double the work.  Every case is a real record from
the monitor corpus with one field replaced.
"""

from __future__ import annotations

import copy
import gzip
import sys
from collections import Counter
from types import FrameType
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartatlas.classify import classify_trial, knowledge
from cartatlas.classify import context as context_module
from cartatlas.classify import text as text_module
from cartatlas.classify.context import build_context
from cartatlas.model import Trial
from cartatlas.normalise import format_spec
from tests.conftest import CTGOV

CORPUS = CTGOV / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"

#: Phrases that each exercise a rule that pairs hits: targets (antigen next to CAR), platform (cell word in
#: the sentence), product source (source word near the CAR), strategy (two antigens in one sentence),
#: in-vivo, a bare "CAR" next to an antigen, engineered T cells next to an antigen, history cues.
PHRASES = [
    "CAR-T ",
    "CD19 CAR-T ",
    "chimeric antigen receptor T cells ",
    "autologous CD19 CAR-T cells ",
    "CD19/CD22 dual-target CAR-T and ",
    "in vivo CAR T cells against CD19 ",
    "anti-CD19 CAR NK cells ",
    "T cells genetically engineered to target CD19 ",
    "after prior CAR-T failure ",
    "tisagenlecleucel with dasatinib ",
    # Issue 13: lists of antigens, numbered shorthand, code names and ambiguous codes, background mentions.
    "CD19, CD20, CD22 and BCMA CAR-T cells & ",
    "4SCAR20/22/70/PSMA/13/79b/GD2 and ",
    "IASO208 cell injection + KITE-197 after lymphodepletion, ",
    "F01 cells after preconditioning with fludarabine ",
    "CAR-T cell therapy may be limited by manufacturing time. ",
]


def _record() -> Trial:
    with gzip.open(CORPUS) as fh:
        study = orjson.loads(fh.readline())
    return format_spec("ctgov_v2").to_trial(study)


RECORD = _record()


def with_text(field: str, phrase: str, n: int) -> Trial:
    """The real record with one field replaced by ``phrase`` repeated ``n`` times."""
    trial: dict[str, Any] = copy.deepcopy(dict(RECORD))
    if field == "interventions":
        # The phrase as every other intervention, a drug between them (rules compare interventions).
        names = [phrase.strip() if i % 2 else "Dasatinib" for i in range(n)]
        trial["interventions"] = [
            {"type": "BIOLOGICAL", "name": name, "other_names": [], "description": None} for name in names
        ]
    else:
        trial[field] = phrase * n
    return trial  # type: ignore[return-value]


def work(trial: Trial) -> int:
    """Python bytecodes and function calls executed by one classification: a deterministic measure of work.

    Bytecodes count the loops inside comprehensions that a call count misses; calls count the C functions
    (a regular-expression search, a slice) at one each.
    """
    kb = knowledge()
    classify_trial(RECORD, kb)  # compiled and warm before counting
    count = 0

    def trace(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        count += 1
        frame.f_trace_opcodes = True
        return trace

    def profile(frame: FrameType, event: str, arg: object) -> None:
        nonlocal count
        if event == "c_call":
            count += 1

    sys.settrace(trace)
    sys.setprofile(profile)
    try:
        classify_trial(trial, kb)
    finally:
        sys.settrace(None)
        sys.setprofile(None)
    return count


@pytest.fixture
def uncapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caps lifted, so that what is measured is the rules' own cost."""
    monkeypatch.setattr(text_module, "MAX_HITS_PER_TERM", 10**9)
    monkeypatch.setattr(context_module, "MAX_EVIDENCE_PER_RULE", 10**9)


@pytest.mark.parametrize("phrase", PHRASES)
@pytest.mark.parametrize("field", ["brief_summary", "brief_title", "interventions"])
def test_work_is_linear_in_the_text_even_without_caps(uncapped: None, field: str, phrase: str) -> None:
    small, large = work(with_text(field, phrase, 50)), work(with_text(field, phrase, 400))
    assert large <= 8.8 * small, f"8 times the text cost {large / small:.1f} times the work"


@pytest.mark.parametrize("phrase", PHRASES)
def test_caps_bound_what_is_kept_and_leave_the_labels_alone(monkeypatch: pytest.MonkeyPatch, phrase: str) -> None:
    trial = with_text("brief_summary", phrase, 1200)
    capped = classify_trial(trial, knowledge())
    ctx = build_context(trial, knowledge())
    per_term = Counter((id(h.seg), h.entry.kind, h.entry.value) for h in ctx.hits)
    assert max(per_term.values()) <= text_module.MAX_HITS_PER_TERM
    per_rule = Counter((e["decision"], e["rule"]) for e in capped["evidence"])
    assert max(per_rule.values()) <= context_module.MAX_EVIDENCE_PER_RULE
    assert "screening:capped" in capped["flags"]
    monkeypatch.setattr(text_module, "MAX_HITS_PER_TERM", 10**9)
    monkeypatch.setattr(context_module, "MAX_EVIDENCE_PER_RULE", 10**9)
    full = classify_trial(trial, knowledge())
    labels = ("relation", "platforms", "targets", "target_strategy", "branch", "disease_entity", "product_source")
    assert {k: capped[k] for k in labels} == {k: full[k] for k in labels}  # type: ignore[literal-required]
    assert [f for f in capped["flags"] if f != "screening:capped"] == full["flags"]


def test_evidence_per_rule_is_bounded_with_many_interventions() -> None:
    """Five hundred other drugs beside the CAR: one label, a bounded list of reasons."""
    trial: dict[str, Any] = copy.deepcopy(dict(RECORD))
    trial["interventions"] = [
        {"type": "BIOLOGICAL", "name": "CD19 CAR-T cells", "other_names": [], "description": None},
        *({"type": "DRUG", "name": f"Compound {i}", "other_names": [], "description": None} for i in range(500)),
    ]
    result = classify_trial(trial, knowledge())  # type: ignore[arg-type]
    assert "other-drug" in result["combinations"]
    per_rule = Counter((e["decision"], e["rule"]) for e in result["evidence"])
    assert per_rule[("combinations", "combination.other_listed_intervention")] == context_module.MAX_EVIDENCE_PER_RULE


def test_caps_never_bind_on_real_records() -> None:
    """The whole monitor corpus screens exactly as without caps: no real field comes near them."""
    to_trial = format_spec("ctgov_v2").to_trial
    kb = knowledge()
    with gzip.open(CORPUS) as fh:
        for line in fh:
            result = classify_trial(to_trial(orjson.loads(line)), kb)
            assert "screening:capped" not in result["flags"], result["trial_id"]
            per_rule = Counter((e["decision"], e["rule"]) for e in result["evidence"])
            assert max(per_rule.values()) < context_module.MAX_EVIDENCE_PER_RULE, result["trial_id"]


# -- the two searches that try a pattern only where it can start give what the full search gives ----------

_PIECES = st.sampled_from(
    [
        "car", "car-t", "CAR T", "cart", "scar ", "cardiac", "chimeric antigen", "嵌合抗原", " after ", "prior ",
        "relapsed after ", "receiving ", "bridging ", "bispecific antibody ", "patients ", "the ", ", ", ". ",
        "carnk", "car nk", "écart", "x", " ", "-", "5", "post", "history of ", "followed by ", "will receive ",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_car_words_search_is_the_full_search(text: str) -> None:
    low = text.lower()
    full = text_module.CAR_WORDS.search(low)
    fast = text_module.car_words_search(low)
    assert (full and full.span()) == (fast and fast.span())


def _reference_effect(kb: Any, hit: Any) -> tuple[str, str]:
    """``mention_effect`` as it was: ``before_re.search`` from every position."""
    before = text_module.clause_before(hit.seg, hit.start)
    pos = 0
    while before:
        m = kb.before_re.search(before, pos)
        if m is None:
            break
        fill = m.group("fill")
        ok = len(fill.split()) <= 6 and not context_module._GIVING.search(fill)
        if ok and not context_module._OTHER_ANCHOR.search(fill):
            phrase = m.group(1)
            if phrase != "bridging" or context_module._BRIDGED.search(fill):
                return kb.context_effects.get(f"before:{phrase}", context_module.PRIOR), phrase
        pos = m.start(1) + 1
    after = text_module.clause_after(hit.seg, hit.end)
    if after:
        m = kb.after_re.search(after)
        if m is not None:
            return kb.context_effects.get(f"after:{m.group(1)}", context_module.PRIOR), m.group(1)
    return context_module.POSITIVE, ""


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=25).map("".join))
def test_mention_effect_finds_the_cue_the_full_search_finds(prefix: str) -> None:
    kb = knowledge()
    trial = dict(RECORD)
    trial["brief_title"] = prefix + " CD19 CAR-T cells"
    ctx = build_context(trial, kb)  # type: ignore[arg-type]
    for m in ctx.mentions:
        if m.hit.seg.field != "brief_title":
            continue
        assert context_module.mention_effect(kb, m.hit) == _reference_effect(kb, m.hit)
