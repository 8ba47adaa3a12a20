"""What the PubMed reader needs to split input into records: an article's PMID and the date NLM
last revised it (which orders versions), read from its XML without normalising it.

Moved from the normaliser (``normalise/pubmed.py``), which imports it from here: a reader does not
import a normaliser.
"""

from __future__ import annotations

import datetime as dt
import re

from lxml import etree

from cartatlas.dates import MONTHS

FORMAT = "pubmed_xml"


REGISTRY = "pubmed"


_SPACE = re.compile(r"\s+")


def clean(text: str | None) -> str | None:
    if text is None:
        return None
    s = _SPACE.sub(" ", text).strip()
    return s or None


def medline_citation(root: etree._Element) -> etree._Element | None:
    if root.tag == "MedlineCitation":
        return root
    return root.find("MedlineCitation")


def record_pmid(root: etree._Element) -> str | None:
    """The PMID of a PubmedArticle, MedlineCitation or PubmedBookArticle, or None."""
    cit = medline_citation(root)
    if cit is not None:
        return clean(cit.findtext("PMID"))
    book = root.find("BookDocument")
    if book is not None:
        return clean(book.findtext("PMID"))
    return None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    s = text.strip()
    return int(s) if s.isascii() and s.isdigit() else None  # "²" is a digit to isdigit, not to int


def _month(text: str | None) -> int | None:
    if not text:
        return None
    s = text.strip().lower().rstrip(".")
    if s.isascii() and s.isdigit():
        m = int(s)
        return m if 1 <= m <= 12 else None
    return MONTHS.get(s) or MONTHS.get(s[:3])


def _date(year: int | None, month: int | None = None, day: int | None = None) -> dt.date | None:
    if year is None or not 1000 <= year <= 9999:
        return None
    try:
        return dt.date(year, month or 1, day or 1)
    except ValueError:
        try:
            return dt.date(year, month or 1, 1)
        except ValueError:
            return dt.date(year, 1, 1)


def ymd_date(el: etree._Element | None) -> dt.date | None:
    """A Year/Month/Day element (DateRevised, ArticleDate, DateCompleted) as a date."""
    if el is None:
        return None
    return _date(_int(el.findtext("Year")), _month(el.findtext("Month")), _int(el.findtext("Day")))


def record_updated(root: etree._Element) -> dt.date | None:
    """NLM's last revision of the record (DateRevised), else its completion or creation date."""
    cit = medline_citation(root)
    if cit is None:
        doc = root.find("BookDocument")
        return ymd_date(doc.find("DateRevised")) if doc is not None else None
    for tag in ("DateRevised", "DateCompleted", "DateCreated"):
        found = ymd_date(cit.find(tag))
        if found is not None:
            return found
    return None
