"""How alike two registrations are: the features of a scored match, and their weights.

A trial registered twice is described twice by people filling different forms:
titles are reworded (a ChiCTR scientific title is often the long form of a
ClinicalTrials.gov brief title), the sponsor may be the hospital in one and the
investigator in the other, sample sizes get rounded.  So no single field
decides; each feature scores 0..1 and the score is their weighted mean over
the features both records have, with the title required.

Titles and interventions are compared as bags of words weighted by rarity
(IDF over every trial being linked), so that "efficacy and safety study" counts
for little and "pirfenidone" or "LY3537982" for much.  Chinese text is compared
as character bigrams; codes and acronyms written in Latin letters inside
Chinese titles (CD19, BCMA, drug codes) also meet the English title's words.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cartatlas.normalise.who import has_cjk

#: Weights of the features; the score is the weighted mean over the features both records have.
WEIGHTS: dict[str, float] = {
    "title": 0.35,
    "sponsor": 0.20,
    "registered": 0.15,
    "enrollment": 0.15,
    "intervention": 0.15,
}
#: At or above: linked automatically, if corroborated (see ``corroborated``).  Between CANDIDATE and
#: THRESHOLD, or not corroborated: stored for a curator, not used.
THRESHOLD = 0.62
CANDIDATE = 0.45
#: Titles of one trial in two registries are at least this alike (in the sample pairs, 0.59 and up).
MIN_AUTO_TITLE = 0.55
#: Below this title similarity a pair is not scored at all: registrations of one trial share their topic.
MIN_TITLE = 0.30

#: Words of any alphabet but Chinese (Développement, Ärzte), digits glued to letters kept together (cd19).
_WORD = re.compile(r"[^\W_\u3400-\u4dbf\u4e00-\u9fff]+")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
#: Words that say nothing about which trial it is (beyond what IDF discounts).
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "by",
        "for",
        "from",
        "in",
        "into",
        "of",
        "on",
        "or",
        "the",
        "to",
        "vs",
        "versus",
        "with",
        "without",
        "its",
        "their",
        "this",
        "that",
        "study",
        "trial",
        "clinical",
        "patients",
        "patient",
        "subjects",
        "participants",
    ]
)
#: Words of organisation names that say nothing about which organisation it is.
_ORG_STOP = frozenset(
    ["the", "of", "and", "co", "ltd", "inc", "limited", "company", "group", "corporation", "gmbh", "sa", "ag", "llc"]
)


def words(text: str | None) -> list[str]:
    """Latin-script words (and codes: cd19, ly3537982) of a text, lower-cased, stop words dropped."""
    if not text:
        return []
    return [w for w in _WORD.findall(text.casefold()) if w not in _STOP and (len(w) > 1 or w.isdigit())]


def bigrams(text: str | None) -> list[str]:
    """Chinese character bigrams of a text (a single character stands alone)."""
    out: list[str] = []
    for run in _CJK_RUN.findall(text or ""):
        if len(run) == 1:
            out.append(run)
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


def org_words(text: str | None) -> list[str]:
    return [w for w in _WORD.findall((text or "").casefold()) if w not in _ORG_STOP]


@dataclass(slots=True)
class Profile:
    """What the matcher knows of one registration."""

    registry: str
    trial_id: str
    #: Every title's words and Chinese bigrams together (for blocking) and each title's apart (for scoring).
    title_words: set[str] = field(default_factory=set)
    title_bigrams: set[str] = field(default_factory=set)
    latin_titles: list[set[str]] = field(default_factory=list)
    chinese_titles: list[set[str]] = field(default_factory=list)
    #: Whether the record has a title in a Latin-script language (English) to compare.
    has_latin_title: bool = False
    sponsor_words: list[set[str]] = field(default_factory=list)
    sponsor_bigrams: list[set[str]] = field(default_factory=list)
    registered: dt.date | None = None
    start: dt.date | None = None
    enrollment: int | None = None
    intervention_words: set[str] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, str]:
        return (self.registry, self.trial_id)


def profile(row: dict[str, Any]) -> Profile:
    """A Profile from a row of ``trials`` (a dict of its columns)."""
    p = Profile(str(row["registry"]), str(row["trial_id"]))
    for column in ("brief_title", "official_title", "acronym", "brief_title_local", "official_title_local"):
        text = row.get(column)
        if not isinstance(text, str) or not text:
            continue
        title_words, title_bigrams = words(text), bigrams(text)
        p.title_words.update(title_words)
        p.title_bigrams.update(title_bigrams)
        if title_bigrams:
            p.chinese_titles.append(set(title_bigrams))
        elif len(title_words) >= 2:
            p.latin_titles.append(set(title_words))
            p.has_latin_title = True
    names = [row.get("lead_sponsor"), row.get("lead_sponsor_local")]
    names += [c.get("name") for c in row.get("collaborators") or () if isinstance(c, dict)]
    for name in names:
        if isinstance(name, str) and name.strip():
            if has_cjk(name):
                p.sponsor_bigrams.append(set(bigrams(name)))
            elif org_words(name):
                p.sponsor_words.append(set(org_words(name)))
    dates = [d for d in (row.get("first_submitted"), row.get("first_posted")) if isinstance(d, dt.date)]
    p.registered = min(dates) if dates else None
    p.start = row.get("start_date") if isinstance(row.get("start_date"), dt.date) else None
    enrollment = row.get("enrollment")
    p.enrollment = int(enrollment) if isinstance(enrollment, int | float) and enrollment > 0 else None
    for iv in row.get("interventions") or ():
        if isinstance(iv, dict):
            for text in [iv.get("name"), *(iv.get("other_names") or [])]:
                if isinstance(text, str):
                    p.intervention_words.update(words(text))
                    p.intervention_words.update(bigrams(text))
    return p


class Idf:
    """Inverse document frequency of tokens over the registrations being linked."""

    def __init__(self, n: int, df: Counter[str]) -> None:
        """``n`` registrations, of which ``df[token]`` have the token (at least those that will be asked for)."""
        self.n = n
        self.df = df

    def __call__(self, token: str) -> float:
        return math.log((self.n + 1) / (self.df.get(token, 0) + 1)) + 1.0

    def cosine(self, a: set[str], b: set[str]) -> float:
        if not a or not b:
            return 0.0
        shared = a & b
        if not shared:
            return 0.0
        num = sum(self(t) ** 2 for t in shared)
        den = math.sqrt(sum(self(t) ** 2 for t in a) * sum(self(t) ** 2 for t in b))
        return num / den if den else 0.0


def _days_score(a: dt.date | None, b: dt.date | None) -> float | None:
    if a is None or b is None:
        return None
    days = abs((a - b).days)
    for limit, score in ((31, 1.0), (92, 0.8), (183, 0.5), (366, 0.25)):
        if days <= limit:
            return score
    return 0.0


def _size_score(a: int | None, b: int | None) -> float | None:
    if a is None or b is None:
        return None
    if a == b:
        return 1.0
    ratio = min(a, b) / max(a, b)
    # Sizes get revised between registrations, but rarely by more than a few percent.
    return 0.7 if ratio >= 0.9 else 0.3 if ratio >= 0.75 else 0.0


def _sponsor_score(a: Profile, b: Profile, idf: Idf) -> float | None:
    best: float | None = None
    if a.sponsor_words and b.sponsor_words:
        best = max(idf.cosine(x, y) for x in a.sponsor_words for y in b.sponsor_words)
    if a.sponsor_bigrams and b.sponsor_bigrams:
        zh = max(idf.cosine(x, y) for x in a.sponsor_bigrams for y in b.sponsor_bigrams)
        best = zh if best is None else max(best, zh)
    if best is None:
        return None
    # Two spellings of one body share its rare words ("Apeiron Biologics", "APEIRON Respiratory
    # Therapies GmbH"); sharing only "hospital" or "university" counts for nearly nothing.
    return min(1.0, best / 0.7)


def _best_cosine(idf: Idf, xs: list[set[str]], ys: list[set[str]]) -> float:
    return max((idf.cosine(x, y) for x in xs for y in ys), default=0.0)


@dataclass(slots=True)
class Match:
    score: float
    features: dict[str, float]

    @property
    def corroborated(self) -> bool:
        """Whether something besides topic and timing agrees: the sponsor, or the planned size.

        Two trials of one hot topic registered the same month (COVID-19
        convalescent plasma, CD19 CAR-T in lymphoma) have alike titles and dates;
        what tells the same trial from its neighbour is who runs it and how many
        it enrols.  A pair without either is left for a curator.
        """
        return self.features.get("sponsor", 0.0) >= 0.5 or self.features.get("enrollment", 0.0) >= 0.7

    @property
    def automatic(self) -> bool:
        return self.score >= THRESHOLD and self.corroborated and self.features["title"] >= MIN_AUTO_TITLE

    def evidence(self) -> dict[str, Any]:
        return {
            "features": {k: round(v, 3) for k, v in self.features.items()},
            "weights": WEIGHTS,
            "corroborated": self.corroborated,
        }


def title_similarity(a: Profile, b: Profile, idf_words: Idf, idf_bigrams: Idf) -> float:
    """How alike the closest pair of titles is (brief or scientific, English or Chinese).

    Titles are compared one with one, not pooled: a registry's long scientific
    title would otherwise dilute the match of two identical brief titles.
    """
    latin = _best_cosine(idf_words, a.latin_titles, b.latin_titles)
    chinese = _best_cosine(idf_bigrams, a.chinese_titles, b.chinese_titles)
    if not (a.has_latin_title and b.has_latin_title) and not chinese:
        # One side has only Chinese: what can meet are codes and acronyms (CD19, BCMA, drug codes).
        shared = {w for w in a.title_words & b.title_words if any(c.isdigit() for c in w) or len(w) >= 4}
        latin = idf_words.cosine(shared, a.title_words) * 0.6 if shared else 0.0
    return max(latin, chinese)


@dataclass(slots=True)
class Corpus:
    """Token rarities over every registration being linked.

    Counted by the database over the stored link features, for the tokens of
    the profiles compared (``cartatlas.link.features``, where the tokens of
    each kind are declared).
    """

    title_words: Idf
    title_bigrams: Idf
    interventions: Idf
    sponsors: Idf


def compare(a: Profile, b: Profile, corpus: Corpus) -> Match | None:
    """The scored comparison of two registrations, or None when their titles are too far apart."""
    title = title_similarity(a, b, corpus.title_words, corpus.title_bigrams)
    if title < MIN_TITLE:
        return None
    features: dict[str, float] = {"title": title}
    sponsor = _sponsor_score(a, b, corpus.sponsors)
    if sponsor is not None:
        features["sponsor"] = sponsor
    registered = _days_score(a.registered, b.registered)
    if registered is not None:
        features["registered"] = registered
    size = _size_score(a.enrollment, b.enrollment)
    if size is not None:
        features["enrollment"] = size
    if a.intervention_words and b.intervention_words:
        features["intervention"] = corpus.interventions.cosine(a.intervention_words, b.intervention_words)
    total = sum(WEIGHTS[k] for k in features)
    score = sum(WEIGHTS[k] * v for k, v in features.items()) / total
    # Registrations years apart are different trials, however alike (a follow-up, a second cohort).
    if registered == 0.0:
        score = min(score, CANDIDATE - 0.01)
    # A score from the title alone is not enough to link.
    if len(features) == 1:
        score = min(score, THRESHOLD - 0.01)
    return Match(score, features)
