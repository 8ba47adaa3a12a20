"""What an article is: clinical report, preclinical study, review, guideline, commentary or other.

Publication types help but do not decide: a "Review" may tabulate trial
results, a "Letter" in a haematology journal is often a case report, and a
preclinical paper says which trial it will lead to.  The abstract decides,
by these rules in this order:

1. review: the publication type says Review / Systematic Review /
   Meta-Analysis, or the abstract says "we review", "this review", "we
   summarize", unless the authors report their own patients ("we treated",
   "we report a case");
2. guideline: Practice Guideline / Guideline / Consensus Development
   Conference, or a title naming a consensus, guideline or recommendations;
3. clinical-report: people received the therapy: patients stated as
   treated, infused, enrolled or dosed (past tense), a case ("a 45-year-old
   man"), or a clinical-trial publication type with results in patients;
4. commentary: Editorial / Comment / News / Interview / Letter without
   patients of its own;
5. preclinical: in vitro / in vivo / xenograft / mouse-model cues, including
   papers that only announce a planned or ongoing trial;
6. other.

Every decision carries its evidence (the cues found), stored in
``kind_evidence``.  Targets, platforms, diseases and branch of a CAR article
come from the trial classifier itself (``cartatlas.classify.classify_trial``
run on the title as brief title and the abstract as summary), so articles
and trials share one knowledge base and one set of context rules; the
vocabulary hits of ``vocab`` decide whether an article is about a CAR at all
and stand in if the classifier fails.  The number of patients treated
is read from the sentence that states it; the country and province from the
affiliations (see ``places``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from cartatlas.publications.places import report_place
from cartatlas.publications.vocab import Hit, display, hits_of, vocab

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("clinical-report", "preclinical", "review", "guideline", "commentary", "other")

_REVIEW_TYPES = {"review", "systematic review", "meta-analysis", "scoping review"}
_GUIDELINE_TYPES = {"practice guideline", "guideline", "consensus development conference", "consensus statement"}
_COMMENT_TYPES = {"editorial", "comment", "news", "interview", "newspaper article", "biography", "letter"}
_CASE_TYPES = {"case reports"}
_TRIAL_TYPES = re.compile(r"^(clinical trial|clinical study|multicenter study|observational study)", re.I)

#: Numbers written as words, as abstracts start sentences with them ("Eighteen patients were infused").
_NUM_WORDS = {
    w: i
    for i, w in enumerate(
        re.findall(
            r"\w+",
            "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
            "sixteen seventeen eighteen nineteen twenty",
        )
    )
}
_NUM = r"(\d{1,4}|" + "|".join(sorted(_NUM_WORDS, key=len, reverse=True)) + r")"
_SUBJECT = (
    r"(?:(?:adult|adults|pediatric|paediatric|children|child|young|evaluable|consecutive|eligible|heavily|"
    r"pretreated|elderly|total|additional|of|the|with|r/r|relapsed|refractory|and|or|[\w/+-]{1,25})\s+){0,6}?"
)
_PATIENT = r"(?:patients?|subjects?|participants?|cases|children|adults|individuals|men|women|recipients)"
_BE = r"(?:were|was|have been|had been|been)\s+(?:successfully\s+)?"
_TREATED_VERB = _BE + r"(?:treated|infused|dosed|given|administered|reinfused)"
_ENROLLED_VERB = _BE + r"(?:enrolled|included|recruited|registered)"

#: (pattern, strength) of statements that people received the product; group 1 is the count.
#: Being treated outranks being enrolled: "20 were enrolled and 18 infused" treated 18.
_PATIENT_COUNT = [
    (re.compile(rf"\b{_NUM}\s+{_SUBJECT}{_PATIENT}\b[^.;]{{0,80}}?\b{_TREATED_VERB}\b", re.I), 4),
    (re.compile(rf"\b{_NUM}\s+{_SUBJECT}{_PATIENT}\b[^.;]{{0,80}}?\b(?:received|underwent|were given)\b", re.I), 4),
    (re.compile(rf"\b{_NUM}\s+{_SUBJECT}{_PATIENT}\b[^.;]{{0,80}}?\b{_ENROLLED_VERB}\b", re.I), 3),
    (re.compile(rf"\b(?:treated|infused|enrolled|dosed|administered to)\s+{_NUM}\s+{_SUBJECT}{_PATIENT}\b", re.I), 3),
    (re.compile(rf"\ba total of\s+{_NUM}\s+{_SUBJECT}{_PATIENT}\b", re.I), 2),
    (re.compile(rf"\b{_PATIENT}\s*\(\s*n\s*=\s*(\d{{1,4}})\s*\)", re.I), 2),
    (re.compile(rf"\b{_NUM}\s+{_SUBJECT}{_PATIENT}\s+(?:with|who)\b", re.I), 1),
]
_CASE = re.compile(
    r"\b(?:a|an|one|our)\s+(\d{1,3})[- ](?:year|yr|month)s?[- ]old\s+"
    r"(?:man|woman|boy|girl|male|female|patient|child|infant)"
    r"|\bwe (?:report|describe|present)(?: here)? (?:a|the|an|one) (?:case|patient)\b"
    r"|\bcase (?:report|presentation|description)\b",
    re.I,
)
_FIRST_PERSON_CLINICAL = re.compile(
    r"\bwe (?:treated|enrolled|infused|administered|conducted a (?:phase|clinical|pilot|first)|report(?:ed)? "
    r"(?:the )?(?:results|outcomes|a case|a patient|\w+ patients)|(?:here )?present (?:the )?(?:results|a case))\b"
    r"|\bour (?:patients?|trial|phase (?:i|ii|1|2)\b)"
    r"|\b(?:in this|in our) (?:phase|trial|study|single-arm|first-in-human|open-label)[^.]{0,60}\bpatients\b",
    re.I,
)
_TRIAL_RESULT = re.compile(
    r"\b(?:complete (?:remission|response)|partial response|overall response|objective response|"
    r"minimal residual disease|MRD[- ]negative|cytokine release syndrome|neurotoxicity|ICANS|progression-free|"
    r"dose[- ]limiting|maximum tolerated dose|expansion and persistence|persisted in (?:the )?(?:blood|patients))\b",
    re.I,
)
_PRECLINICAL = re.compile(
    r"\b(?:in vitro|in vivo|xenograft|xenografts|mouse|mice|murine|NSG|NOD[/ -]SCID|tumor-bearing|tumour-bearing|"
    r"cell lines?|preclinical|pre-clinical|animal models?|orthotopic|humanized mice|patient-derived xenograft|PDX)\b",
    re.I,
)
_PLANNED = re.compile(
    r"\b(?:will be|to be|is being|are being|planned|ongoing|warrant(?:s|ed)?|support(?:s|ed)? (?:the )?(?:clinical|"
    r"further|initiation|translation)|paves? the way|provides? a rationale|clinical translation|future clinical)\b",
    re.I,
)
_REVIEW_TEXT = re.compile(
    r"\b(?:we (?:review|summari[sz]e|discuss|highlight|outline|describe (?:the )?(?:current|recent))|"
    r"this (?:review|article reviews|mini-review|perspective)|in this review|here,? we review|review(?:s|ed)? "
    r"(?:the )?(?:current|recent|latest)|(?:an )?overview of|recent advances|state of the art)\b",
    re.I,
)
_GUIDELINE_TITLE = re.compile(r"\b(?:consensus|guideline|guidelines|recommendations|position statement)\b", re.I)
_SEPARATOR = re.compile(r"(?<=[.;:!?])\s+")


def _number(text: str) -> int | None:
    t = text.lower()
    if t.isdigit():
        return int(t)
    return _NUM_WORDS.get(t)


def _sentences(text: str) -> list[str]:
    return [s for s in _SEPARATOR.split(text) if s]


def patients_treated(abstract: str | None) -> tuple[int | None, str | None]:
    """(count, the words it was read from) of the people the abstract says received the product.

    The strongest statement wins ("18 patients were infused" over "20
    patients with ALL"); among equals the first, which abstracts use for the
    treated population.  A planned or future cohort ("30 patients will be
    enrolled") is not counted.  A single case report counts one.
    """
    if not abstract:
        return None, None
    best: tuple[int, int, str] | None = None
    for sentence in _sentences(abstract):
        if _PLANNED.search(sentence) and re.search(r"\bwill\b|\bplanned\b|\bto be\b", sentence, re.I):
            continue
        for pattern, strength in _PATIENT_COUNT:
            m = pattern.search(sentence)
            if m is None:
                continue
            n = _number(m.group(1))
            if n is None or n == 0 or n > 5000:
                continue
            if best is None or strength > best[0]:
                best = (strength, n, m.group(0))
    if best is not None:
        return best[1], best[2]
    m = _CASE.search(abstract)
    if m is not None:
        return 1, m.group(0)
    return None, None


def _types(row: dict[str, Any]) -> set[str]:
    return {t.lower() for t in row.get("publication_types") or []}


def classify_kind(row: dict[str, Any]) -> tuple[str, str]:
    """(kind, evidence) of one publications row (see the module doc for the rules).

    The kind does not depend on the product: a clinical report of a non-CAR
    therapy (a PubMed query finds some) is a clinical report with ``is_car``
    false, and the landscape counts rows that are both.
    """
    title = row.get("title") or ""
    abstract = row.get("abstract") or ""
    text = f"{title}\n{abstract}"
    types = _types(row)
    evidence: list[str] = []

    first_person = _FIRST_PERSON_CLINICAL.search(text)
    case = _CASE.search(text) or ((types & _CASE_TYPES and "case") or None)
    count, count_text = patients_treated(abstract)
    results = _TRIAL_RESULT.search(abstract)
    trial_types = [t for t in row.get("publication_types") or [] if _TRIAL_TYPES.match(t)]
    own_patients = bool(first_person or case)

    review_type = types & _REVIEW_TYPES
    review_text = _REVIEW_TEXT.search(text)
    if (review_type or review_text) and not own_patients:
        if review_type:
            evidence.append(f"publication type {', '.join(sorted(review_type))}")
        if review_text:
            evidence.append(f"abstract: {review_text.group(0)!r}")
        if count_text:
            evidence.append(f"patients mentioned ({count_text!r}) are others' results")
        return "review", "; ".join(evidence)

    guideline_type = types & _GUIDELINE_TYPES
    guideline_title = _GUIDELINE_TITLE.search(title)
    if guideline_type or (guideline_title and not own_patients and count is None):
        if guideline_type:
            evidence.append(f"publication type {', '.join(sorted(guideline_type))}")
        if guideline_title:
            evidence.append(f"title: {guideline_title.group(0)!r}")
        return "guideline", "; ".join(evidence)

    clinical_cues: list[str] = []
    if case:
        clinical_cues.append("case report" if isinstance(case, str) else f"case: {case.group(0)!r}")
    if first_person:
        clinical_cues.append(f"own patients: {first_person.group(0)!r}")
    if count_text and (first_person or results or trial_types or case):
        clinical_cues.append(f"patients treated: {count_text!r}")
    if trial_types and (results or count_text):
        clinical_cues.append(f"publication type {trial_types[0]}")
    if clinical_cues:
        if results:
            clinical_cues.append(f"results: {results.group(0)!r}")
        return "clinical-report", "; ".join(clinical_cues)

    comment_type = types & _COMMENT_TYPES
    if comment_type:
        return "commentary", f"publication type {', '.join(sorted(comment_type))} without patients of its own"

    preclinical = _PRECLINICAL.findall(abstract)
    if preclinical:
        evidence.append("preclinical: " + ", ".join(dict.fromkeys(p.lower() for p in preclinical[:6])))
        planned = _PLANNED.search(abstract)
        if planned:
            evidence.append(f"trial only announced: {planned.group(0)!r}")
        if count_text:
            evidence.append(f"patient mention without treatment reported: {count_text!r}")
        return "preclinical", "; ".join(evidence)
    return "other", "no cue for a report, review, guideline, commentary or preclinical study"


def _branch(diseases: list[str], branches: dict[str, str]) -> str | None:
    found = {branches[d] for d in diseases if d in branches}
    found.discard("other")
    if not found:
        return "other" if diseases else None
    return found.pop() if len(found) == 1 else "mixed"


_BARE_CART = re.compile(r"^CARTs?$")
#: Glued antigen spellings that are CAR mentions themselves: CD19CAR, CARCD19, CART19.
_GLUED_CAR = re.compile(r"^CAR|CARTs?$|CARs?$")
_CART_FOLLOW = re.compile(r"^[\s-]*(?:\d|cells?\b|therap|T\b)", re.I)


def _is_car_mention(hit: Hit, hits: list[Hit], *texts: str) -> bool:
    """A CAR term that means a CAR: not inside another meaning (knowledge/car_other_meanings.csv), and a
    bare upper-case CART only when a number or "cells" follows (CART19, CART cells), since other
    acronyms end in CART too (KM-CART: cell-free and concentrated ascites reinfusion therapy)."""
    if any(o.kind == "other_meaning" and o.start <= hit.start and hit.end <= o.end for o in hits):
        return False
    if not _BARE_CART.match(hit.text):
        return True
    for text in texts:
        disp = display(text)
        for m in re.finditer(r"(?<![A-Za-z0-9])CARTs?(?![A-Za-z0-9])", disp):
            before = disp[max(0, m.start() - 1) : m.start()]
            if before == "-":
                continue
            if _CART_FOLLOW.match(disp[m.end() : m.end() + 8]):
                return True
    return False


def screen_as_trial(row: dict[str, Any]) -> Any:
    """The trial classifier's reading of an article (title as brief title, abstract as summary).

    Reuses ``cartatlas.classify.classify_trial`` so that targets, platforms and
    diseases follow the same knowledge base and context rules as trials; None
    when the classifier is unavailable or fails on this text (the vocabulary
    hits are used then).
    """
    try:
        from cartatlas.classify import classify_trial
    except ImportError:  # pragma: no cover - the classifier ships with cartatlas
        return None
    empty: list[Any] = []
    pseudo: dict[str, Any] = {
        "trial_id": row.get("pmid") or "",
        "registry": "pubmed",
        "nct_id": None,
        "org_study_id": None,
        "secondary_ids": empty,
        "brief_title": row.get("title"),
        "official_title": None,
        "acronym": None,
        "overall_status": None,
        "study_type": None,
        "phases": empty,
        "first_submitted": None,
        "first_posted": None,
        "start_date": None,
        "primary_completion_date": None,
        "completion_date": None,
        "last_update_posted": None,
        "lead_sponsor": None,
        "lead_sponsor_class": None,
        "collaborators": empty,
        "conditions": empty,
        "keywords": list(row.get("keywords") or []),
        "mesh_terms": [m["descriptor"] for m in row.get("mesh_headings") or [] if m.get("descriptor")],
        "interventions": empty,
        "arm_groups": empty,
        "brief_summary": row.get("abstract"),
        "detailed_description": None,
        "eligibility_criteria": None,
        "sex": None,
        "minimum_age": None,
        "maximum_age": None,
        "enrollment": None,
        "enrollment_type": None,
        "primary_outcomes": empty,
        "sites": empty,
        "countries": empty,
        "has_results": None,
        "source_format": "pubmed_xml",
    }
    try:
        return classify_trial(pseudo)  # type: ignore[arg-type]
    except Exception as exc:  # the article keeps its vocabulary reading
        log.debug("PMID %s: trial classifier failed (%r); using vocabulary hits", row.get("pmid"), exc)
        return None


def classify_publication(row: dict[str, Any]) -> dict[str, Any]:
    """The classification columns of a publications row."""
    kb = vocab()
    title = row.get("title") or ""
    abstract = row.get("abstract") or ""
    keywords = "; ".join(row.get("keywords") or [])
    hits: list[Hit] = []
    for text in (title, abstract, keywords):
        hits.extend(kb.scan(text))
    car_hits = [h for h in hits_of(hits, "car", "caar") if _is_car_mention(h, hits, title, abstract, keywords)]
    # "in vivo" is a preclinical commonplace; it names the in-vivo CAR platform only right before a CAR mention.
    car_hits += [v for v in hits_of(hits, "vivo") if any(c.start >= v.end and c.start - v.end <= 40 for c in car_hits)]
    product_hits = list(hits_of(hits, "product"))
    mesh = {m["descriptor"].lower() for m in row.get("mesh_headings") or [] if m.get("descriptor")}
    glued = [h for h in hits_of(hits, "antigen") if _GLUED_CAR.search(h.text.replace("-", ""))]
    is_car = bool(car_hits or product_hits or glued) or "receptors, chimeric antigen" in mesh
    targets: list[str] = []
    for hit in hits:
        if hit.kind == "antigen" and hit.value not in targets:
            targets.append(hit.value)
        elif hit.kind == "product":
            for t in kb.product_targets.get(hit.value, ()):
                if t not in targets:
                    targets.append(t)
    platforms: list[str] = []
    for hit in [*car_hits, *product_hits]:
        value = kb.product_platform.get(hit.value, hit.value) if hit.kind == "product" else hit.value
        if value and value != "CAR" and value not in platforms:
            platforms.append(value)
    if is_car and not platforms:
        cells = [h.value for h in hits_of(hits, "cell")]
        platforms.append(cells[0] if cells else "CAR-T")
    diseases: list[str] = []
    for hit in hits_of(hits, "disease"):
        if hit.value not in diseases:
            diseases.append(hit.value)
    branch = _branch(diseases, kb.disease_branch)
    screened = screen_as_trial(row) if is_car else None
    if screened is not None:
        # The trial classifier's context rules (negations, markers, history cues) beat bare vocabulary hits.
        targets = [t for t in screened["targets"] if t != "unknown"]
        platforms = list(screened["platforms"]) or platforms
        if screened["disease_entity"]:
            diseases = list(screened["disease_entity"])
            branch = None if screened["branch"] == "unknown" else screened["branch"]
    kind, kind_evidence = classify_kind(row)
    count, count_text = patients_treated(abstract) if kind == "clinical-report" else (None, None)
    place = report_place(row.get("authors") or [])
    return {
        "kind": kind,
        "kind_evidence": kind_evidence,
        "is_car": is_car,
        "targets": targets,
        "platforms": platforms,
        "disease_branch": branch,
        "diseases": diseases,
        "patients_treated": count,
        "patients_evidence": count_text,
        "report_country": place.country,
        "report_country_basis": place.basis,
        "report_institution": place.institution,
        "report_region": place.region,
        "report_region_name": place.region_name,
    }
