"""One PubMed record (``PubmedArticle`` or a bare ``MedlineCitation``) as a row of ``publications``.

The stored payload is the XML text of one record exactly as PubMed sent it, so
that a later cartatlas can read more out of it; this module reads the fields a
landscape of clinical reports needs, by the element names of the PubMed DTD
(2016 MedlineCitationSet through the 2024 PubmedArticleSet):

- ``Article/ArticleTitle`` and ``VernacularTitle``; inline markup (``<i>``,
  ``<sup>``) is flattened to its text.
- ``Abstract/AbstractText`` with ``Label``/``NlmCategory``: structured
  abstracts keep their section labels ("METHODS: ...").
- ``AuthorList/Author`` (``LastName``/``ForeName``/``Initials`` or
  ``CollectiveName``; ``Identifier Source="ORCID"``; ``AffiliationInfo``).
  PubMed has no corresponding-author element; the e-mail address that
  publishers put in the corresponding author's affiliation ("Electronic
  address: ...") is what marks one.
- ``Journal/JournalIssue/PubDate`` in all its forms: Year/Month/Day,
  Year/Season, and free-text ``MedlineDate`` ("2019 Nov-Dec",
  "1998 Dec-1999 Jan", "2000 Spring", "2001 Dec 24-31").
- ``PublicationTypeList``, ``MeshHeadingList``, ``KeywordList``,
  ``DataBankList`` (ClinicalTrials.gov, ChiCTR, ... accession numbers),
  ``ArticleIdList`` (doi, pmc) and, in older records, ``OtherID``/``ELocationID``.

Classification (kind, targets, country, ...) is computed here too, by
``cartatlas.publications.classify``: it reads nothing but the article, so a
``rebuild`` re-derives it with the current knowledge base.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from lxml import etree

from cartatlas.normalise.dates import MONTHS
from cartatlas.normalise.formats import DerivedTable, FormatSpec, register_format
from cartatlas.normalise.ids import find_registry_ids, id_registry
from cartatlas.sources.pubmed.identity import FORMAT as FORMAT
from cartatlas.sources.pubmed.identity import REGISTRY as REGISTRY
from cartatlas.sources.pubmed.identity import _date, _int, _month
from cartatlas.sources.pubmed.identity import clean as clean
from cartatlas.sources.pubmed.identity import medline_citation as medline_citation
from cartatlas.sources.pubmed.identity import record_pmid as record_pmid
from cartatlas.sources.pubmed.identity import record_updated as record_updated
from cartatlas.sources.pubmed.identity import ymd_date as ymd_date
from cartatlas.store.schema.publications import PUBLICATION_SCHEMA

log = logging.getLogger(__name__)


PUBLICATIONS = DerivedTable("publications", PUBLICATION_SCHEMA, "pmid")

#: A season stands for the first month of its quarter as journals use it (northern
#: hemisphere); "Winter 2000" is the issue at the start of 2000, so January.
_SEASONS = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 1}

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.S)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def xml_parser() -> etree.XMLParser:
    """A parser that fetches and expands nothing a record points at (no XXE, no network)."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def parse_record(text: str) -> etree._Element:
    """Parse one stored record; a declaration naming the original byte encoding no longer applies."""
    return etree.fromstring(_XML_DECLARATION.sub("", text, count=1).encode("utf-8"), xml_parser())


def all_text(el: etree._Element | None) -> str | None:
    """An element's text with inline markup (<i>, <sub>, <sup>, MathML) flattened."""
    if el is None:
        return None
    return clean("".join(str(t) for t in el.itertext()))


_MEDLINE_TOKEN = re.compile(r"(\d{4})|([A-Za-z]+)|(\d{1,2})")


def parse_medline_date(text: str | None) -> tuple[dt.date | None, str | None]:
    """(first day of the earliest period, precision) of a free-text MedlineDate.

    Takes the first year written and, after it, the first month or season and a
    day right after a month: "1998 Dec-1999 Jan" is 1998-12-01, "2000 Spring"
    is 2000-03-01 (season), "2001 Dec 24-31" is 2001-12-24.  A month written
    before the year ("Dec-Jan 1999") still counts.  Text with no year gives
    (None, None).
    """
    if not text:
        return None, None
    year: int | None = None
    month: int | None = None
    day: int | None = None
    precision = "year"
    pending_month: int | None = None
    pending_precision: str | None = None
    for m in _MEDLINE_TOKEN.finditer(text):
        number, word, small = m.group(1), m.group(2), m.group(3)
        if number is not None:
            if year is None:
                year = int(number)
                if pending_month is not None:
                    month, precision = pending_month, pending_precision or "month"
                continue
            break  # a second year ends the first period
        if word is not None:
            w = word.lower()
            found = MONTHS.get(w) or (MONTHS.get(w[:3]) if len(w) >= 3 else None)
            kind = "month"
            if found is None and w in _SEASONS:
                found, kind = _SEASONS[w], "season"
            if found is None:
                continue
            if year is None:
                if pending_month is None:
                    pending_month, pending_precision = found, kind
                continue
            if month is None:
                month, precision = found, kind
                continue
            break
        if small is not None and year is not None and month is not None and day is None and precision == "month":
            value = int(small)
            if 1 <= value <= 31:
                day, precision = value, "day"
            continue
    if year is None:
        return None, None
    return _date(year, month, day), precision


def pub_date(pub: etree._Element | None) -> tuple[str | None, dt.date | None, str | None]:
    """(text as printed, date, precision) of a JournalIssue/PubDate."""
    if pub is None:
        return None, None, None
    medline = clean(pub.findtext("MedlineDate"))
    if medline is not None:
        date, precision = parse_medline_date(medline)
        return medline, date, precision
    year_text, month_text = clean(pub.findtext("Year")), clean(pub.findtext("Month"))
    day_text, season = clean(pub.findtext("Day")), clean(pub.findtext("Season"))
    printed = " ".join(p for p in (year_text, month_text, day_text, season) if p) or None
    year = _int(year_text)
    month = _month(month_text)
    if month is not None:
        day = _int(day_text)
        return printed, _date(year, month, day), "day" if day else "month"
    if season is not None:
        # The 2024 DTD puts ranges such as "May-Jun" in Season too.
        date, precision = parse_medline_date(f"{year_text or ''} {season}")
        return printed, date, precision
    return printed, _date(year), "year" if year else None


def _author(el: etree._Element, position: int, count: int) -> dict[str, Any]:
    affiliations = [a for a in (all_text(x) for x in el.findall("AffiliationInfo/Affiliation")) if a]
    if not affiliations:  # the 2013 and older DTDs: one Affiliation per article, on the Article
        affiliations = []
    orcid = None
    for ident in el.findall("Identifier"):
        if (ident.get("Source") or "").upper() == "ORCID":
            orcid = clean(ident.text)
            break
    return {
        "position": position,
        "last_name": clean(el.findtext("LastName")),
        "fore_name": clean(el.findtext("ForeName")),
        "initials": clean(el.findtext("Initials")),
        "collective_name": all_text(el.find("CollectiveName")),
        "orcid": orcid,
        "affiliations": affiliations,
        "is_first": position == 1,
        "is_last": position == count,
        "is_corresponding": any("electronic address" in a.lower() or _EMAIL.search(a) for a in affiliations),
        "equal_contrib": (el.get("EqualContrib") or "").upper() == "Y",
    }


def _authors(article: etree._Element | None) -> list[dict[str, Any]]:
    if article is None:
        return []
    els = [a for a in article.findall("AuthorList/Author") if (a.get("ValidYN") or "Y").upper() != "N"]
    authors = [_author(el, i, len(els)) for i, el in enumerate(els, start=1)]
    # MEDLINE before 2014 gave one Affiliation for the whole article (the first author's).
    legacy = all_text(article.find("Affiliation"))
    if legacy and authors and not authors[0]["affiliations"]:
        authors[0]["affiliations"] = [legacy]
        authors[0]["is_corresponding"] = bool(_EMAIL.search(legacy) or "electronic address" in legacy.lower())
    return authors


def cite_name(author: dict[str, Any]) -> str | None:
    """An author as a reference list prints it: "June CH", or the group's name."""
    if author.get("last_name"):
        return " ".join(p for p in (author["last_name"], author.get("initials")) if p)
    return author.get("collective_name")


def _abstract(article: etree._Element | None) -> tuple[str | None, list[dict[str, Any]]]:
    if article is None:
        return None, []
    sections = []
    for el in article.findall("Abstract/AbstractText"):
        text = all_text(el)
        if not text:
            continue
        sections.append({"label": clean(el.get("Label")), "nlm_category": clean(el.get("NlmCategory")), "text": text})
    if not sections:
        return None, []
    joined = "\n\n".join(f"{s['label']}: {s['text']}" if s["label"] else str(s["text"]) for s in sections)
    return joined, sections


def _mesh(cit: etree._Element) -> list[dict[str, Any]]:
    out = []
    for heading in cit.findall("MeshHeadingList/MeshHeading"):
        desc = heading.find("DescriptorName")
        if desc is None:
            continue
        qualifiers = [q for q in (all_text(x) for x in heading.findall("QualifierName")) if q]
        major = (desc.get("MajorTopicYN") or "N").upper() == "Y" or any(
            (q.get("MajorTopicYN") or "N").upper() == "Y" for q in heading.findall("QualifierName")
        )
        out.append({"descriptor": all_text(desc), "ui": desc.get("UI"), "major": major, "qualifiers": qualifiers})
    return out


def _databanks(article: etree._Element | None) -> list[dict[str, Any]]:
    if article is None:
        return []
    banks = []
    for bank in article.findall("DataBankList/DataBank"):
        numbers = [n for n in (clean(x.text) for x in bank.findall("AccessionNumberList/AccessionNumber")) if n]
        banks.append({"name": clean(bank.findtext("DataBankName")), "accession_numbers": numbers})
    return banks


def _article_ids(
    root: etree._Element, cit: etree._Element, article: etree._Element | None
) -> tuple[str | None, str | None]:
    """(doi, pmc id): PubmedData/ArticleIdList first, then ELocationID and OtherID (baseline files)."""
    doi = pmc = None
    # Only the article's own list: each reference in ReferenceList has an ArticleIdList too.
    for aid in root.findall("PubmedData/ArticleIdList/ArticleId"):
        kind = (aid.get("IdType") or "").lower()
        if kind == "doi" and doi is None:
            doi = clean(aid.text)
        elif kind == "pmc" and pmc is None:
            pmc = clean(aid.text)
    if doi is None and article is not None:
        for loc in article.findall("ELocationID"):
            if (loc.get("EIdType") or "").lower() == "doi" and (loc.get("ValidYN") or "Y").upper() == "Y":
                doi = clean(loc.text)
                break
    if pmc is None:
        for other in cit.findall("OtherID"):
            value = clean(other.text) or ""
            m = re.match(r"(PMC\d+)", value)
            if m:
                pmc = m.group(1)
                break
    return doi, pmc


def _registry_ids(banks: list[dict[str, Any]], title: str | None, abstract: str | None) -> list[dict[str, Any]]:
    """Registry ids from DataBank entries first, then those written in the title and abstract."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()

    def add(registry: str, ident: str, found_in: str) -> None:
        key = (registry, normalise_trial_id(registry, ident))
        if key not in seen:
            seen.add(key)
            out.append({"registry": registry, "id": key[1], "found_in": found_in})

    for bank in banks:
        for number in bank["accession_numbers"]:
            registry = id_registry(number)
            if registry is not None:
                add(registry, number, "databank")
    for where, text in (("title", title), ("abstract", abstract)):
        for registry, ident in find_registry_ids(text):
            add(registry, ident, where)
    return out


def normalise_trial_id(registry: str, ident: str) -> str:
    """The spelling registries use: NCT and ChiCTR prefixes in their own case, no stray spaces."""
    s = ident.strip().replace(" ", "")
    if registry == "ctgov":
        return s.upper()
    if registry == "chictr":
        return "ChiCTR" + s[6:].upper()
    return s


def normalise_pubmed(payload: str) -> dict[str, Any]:
    """The publications row of one stored record, without its labels.

    The labels (kind, CAR, targets, country, ...) are the classification's: the pipeline adds
    them when it stores the row (``cartatlas.pipeline.prepare.normalised_row``).
    """
    root = parse_record(payload)
    return parse_publication(root)


def parse_publication(root: etree._Element) -> dict[str, Any]:
    """The bibliographic fields of a record; classification columns are left empty."""
    pmid = record_pmid(root)
    if not pmid:
        raise ValueError("record has no PMID")
    cit = medline_citation(root)
    if cit is None:
        return _book(root, pmid)
    article = cit.find("Article")
    journal = article.find("Journal") if article is not None else None
    title = all_text(article.find("ArticleTitle")) if article is not None else None
    abstract, sections = _abstract(article)
    authors = _authors(article)
    printed, date, precision = pub_date(journal.find("JournalIssue/PubDate") if journal is not None else None)
    article_date = None
    if article is not None:
        for ad in article.findall("ArticleDate"):
            article_date = ymd_date(ad)
            if article_date is not None:
                break
    banks = _databanks(article)
    doi, pmc = _article_ids(root, cit, article)
    registry_ids = _registry_ids(banks, title, abstract)
    pagination = article.find("Pagination") if article is not None else None
    pages = None
    if pagination is not None:
        pages = clean(pagination.findtext("MedlinePgn"))
        if pages is None:
            start, end = clean(pagination.findtext("StartPage")), clean(pagination.findtext("EndPage"))
            pages = "-".join(p for p in (start, end) if p) or None
    if pages is None and article is not None:
        for loc in article.findall("ELocationID"):
            if (loc.get("EIdType") or "").lower() == "pii":
                pages = clean(loc.text)
                break
    first = cite_name(authors[0]) if authors else None
    year = date.year if date is not None else None
    return {
        "pmid": pmid,
        "registry": REGISTRY,
        "title": title,
        "vernacular_title": all_text(article.find("VernacularTitle")) if article is not None else None,
        "abstract": abstract,
        "abstract_sections": sections,
        "languages": [x for x in (clean(e.text) for e in article.findall("Language")) if x]
        if article is not None
        else [],
        "authors": authors,
        "author_count": len(authors),
        "first_author": first,
        "journal": all_text(journal.find("Title")) if journal is not None else None,
        "journal_abbrev": clean(journal.findtext("ISOAbbreviation")) if journal is not None else None,
        "journal_country": clean(cit.findtext("MedlineJournalInfo/Country")),
        "volume": clean(journal.findtext("JournalIssue/Volume")) if journal is not None else None,
        "issue": clean(journal.findtext("JournalIssue/Issue")) if journal is not None else None,
        "pages": pages,
        "pub_date_text": printed,
        "pub_date": date,
        "pub_date_precision": precision,
        "pub_year": year,
        "article_date": article_date,
        "publication_types": [
            x for x in (all_text(e) for e in article.findall("PublicationTypeList/PublicationType")) if x
        ]
        if article is not None
        else [],
        "mesh_headings": _mesh(cit),
        "keywords": [x for x in (all_text(e) for e in cit.findall("KeywordList/Keyword")) if x],
        "doi": doi,
        "pmc_id": pmc,
        "databanks": banks,
        "registry_ids": registry_ids,
        "nct_ids": [r["id"] for r in registry_ids if r["registry"] == "ctgov"],
        "chictr_ids": [r["id"] for r in registry_ids if r["registry"] == "chictr"],
        "medline_status": cit.get("Status"),
        "publication_status": clean(root.findtext("PubmedData/PublicationStatus")),
        "date_completed": ymd_date(cit.find("DateCompleted")),
        "date_revised": ymd_date(cit.find("DateRevised")),
        "source_format": FORMAT,
    }


def _book(root: etree._Element, pmid: str) -> dict[str, Any]:
    """A PubmedBookArticle (a chapter of an NCBI Bookshelf book): the few fields it shares with articles."""
    doc = root.find("BookDocument")
    assert doc is not None
    title = all_text(doc.find("ArticleTitle")) or all_text(doc.find("Book/BookTitle"))
    abstract, sections = _abstract(doc)
    authors = _authors(doc)
    printed, date, precision = pub_date(doc.find("Book/PubDate"))
    registry_ids = _registry_ids([], title, abstract)
    return {
        "pmid": pmid,
        "registry": REGISTRY,
        "title": title,
        "abstract": abstract,
        "abstract_sections": sections,
        "authors": authors,
        "author_count": len(authors),
        "first_author": cite_name(authors[0]) if authors else None,
        "journal": all_text(doc.find("Book/BookTitle")),
        "pub_date_text": printed,
        "pub_date": date,
        "pub_date_precision": precision,
        "pub_year": date.year if date is not None else None,
        "publication_types": [x for x in (all_text(e) for e in doc.findall("PublicationType")) if x],
        "keywords": [x for x in (all_text(e) for e in doc.findall("KeywordList/Keyword")) if x],
        "registry_ids": registry_ids,
        "nct_ids": [r["id"] for r in registry_ids if r["registry"] == "ctgov"],
        "chictr_ids": [r["id"] for r in registry_ids if r["registry"] == "chictr"],
        "publication_status": clean(root.findtext("PubmedBookData/PublicationStatus")),
        "source_format": FORMAT,
    }


register_format(FormatSpec(FORMAT, REGISTRY, 20, False, normalise_pubmed, target=PUBLICATIONS))  # type: ignore[arg-type]
