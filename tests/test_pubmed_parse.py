"""PubMed XML: the reader on the real samples, field by field, and on malformed input (issue 6).

Expected values were read by hand from the sample files in ../shared/data/pubmed/.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cartatlas
from cartatlas.model import RawRecord, Reject
from cartatlas.normalise import format_spec
from cartatlas.normalise.pubmed import FORMAT, parse_medline_date
from cartatlas.pipeline.prepare import normalised_row
from cartatlas.sources.files import Input, read_input, read_path
from tests.conftest import DATA

PUBMED = DATA / "pubmed"
EFETCH = PUBMED / "pubmed-29768149.xml"
CURRENT = PUBMED / "test_current_medline.xml.gz"
BASELINE = PUBMED / "medline16n0902.xml.gz"


def _row(payload: str) -> dict[str, Any]:
    """An article's publications row as the importer stores it: normalised, then labelled."""
    return dict(normalised_row(format_spec(FORMAT), payload))


def _records(path: Path) -> list[RawRecord]:
    items = list(read_path(path))
    assert not [i for i in items if isinstance(i, Reject)], items
    return [i for i in items if isinstance(i, RawRecord)]


def test_record_counts_per_sample_file() -> None:
    assert len(_records(EFETCH)) == 1
    assert len(_records(CURRENT)) == 4
    # 604 MedlineCitation records; the file's one DeleteCitation is not a record.
    baseline = _records(BASELINE)
    assert len(baseline) == 604
    assert len({r.record_id for r in baseline}) == 604
    assert all(r.registry == "pubmed" and r.format == "pubmed_xml" for r in baseline)


def test_efetch_article_field_by_field() -> None:
    (rec,) = _records(EFETCH)
    assert rec.record_id == "29768149"
    assert rec.record_updated == dt.date(2022, 4, 10)  # DateRevised
    assert rec.payload.startswith("<PubmedArticle>") and rec.payload.endswith("</PubmedArticle>")
    row = _row(rec.payload)
    assert row["title"] == "Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma."
    assert [s["label"] for s in row["abstract_sections"]] == ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert row["abstract"].startswith("BACKGROUND: In patients with mild asthma, as-needed use")
    assert "\n\nMETHODS: We conducted a 52-week, double-blind trial" in row["abstract"]
    # Inline <sub> is flattened into the text.
    assert "fast-acting β 2-agonist" in row["abstract"]
    assert row["author_count"] == 10
    assert row["first_author"] == "O'Byrne PM"
    assert row["authors"][-1]["last_name"] == "Reddel" and row["authors"][-1]["is_last"]
    assert row["authors"][0]["affiliations"][0].startswith("From the Firestone Institute for Respiratory Health")
    assert row["journal"] == "The New England journal of medicine"
    assert row["journal_abbrev"] == "N Engl J Med"
    assert (row["volume"], row["issue"], row["pages"]) == ("378", "20", "1865-1876")
    assert row["pub_date"] == dt.date(2018, 5, 17) and row["pub_date_precision"] == "day"
    assert row["pub_year"] == 2018
    assert row["doi"] == "10.1056/NEJMoa1715274"
    assert "Clinical Trial, Phase III" in row["publication_types"]
    assert "Randomized Controlled Trial" in row["publication_types"]
    assert row["databanks"] == [{"name": "ClinicalTrials.gov", "accession_numbers": ["NCT02149199"]}]
    assert row["nct_ids"] == ["NCT02149199"]
    # The same id is written in the abstract too: one entry, found first in the DataBank list.
    assert row["registry_ids"] == [{"registry": "ctgov", "id": "NCT02149199", "found_in": "databank"}]
    asthma = next(m for m in row["mesh_headings"] if m["descriptor"] == "Asthma")
    assert asthma == {"descriptor": "Asthma", "ui": "D001249", "major": True, "qualifiers": ["drug therapy"]}
    assert row["date_completed"] == dt.date(2018, 5, 24)
    assert row["publication_status"] is None or row["publication_status"] == "ppublish"
    assert row["is_car"] is False


def test_current_dtd_records_field_by_field() -> None:
    rows = {r.record_id: (r, _row(r.payload)) for r in _records(CURRENT)}
    assert set(rows) == {"36400559", "2930949", "11446611", "28786991"}
    rec, back = rows["36400559"]
    assert rec.record_updated == dt.date(2022, 11, 30)
    assert back["title"] == "Back Pain: Differential Diagnosis and Management."
    assert back["pub_date_text"] == "2023 Feb" and back["pub_date"] == dt.date(2023, 2, 1)
    assert back["article_date"] == dt.date(2022, 10, 29)
    assert back["doi"] == "10.1016/j.ncl.2022.07.002"
    assert back["keywords"] == ["Back pain", "Diagnosis", "Management", "Outpatient"]
    assert back["publication_types"] == ["Journal Article", "Review"]
    assert back["pages"] == "61-76"
    # The last author's affiliation carries the e-mail address: the corresponding author.
    assert [a["is_corresponding"] for a in back["authors"]] == [False, False, False, True]
    assert back["report_country"] == "US" and back["report_country_basis"] == "corresponding author"
    assert back["kind"] == "review"
    _, old = rows["2930949"]
    assert old["pub_date"] == dt.date(1985, 8, 1)
    assert old["pmc_id"] == "PMC1306303"
    assert old["first_author"] == "Reuler JB"
    assert old["report_country"] is None and old["report_country_basis"] is None
    _, season = rows["11446611"]
    # 2024 DTD: <Season>May-Jun</Season>
    assert season["pub_date_text"] == "2001 May-Jun"
    assert season["pub_date"] == dt.date(2001, 5, 1)
    assert season["doi"] == "10.7861/clinmedicine.1-3-188"
    _, review = rows["28786991"]
    # The DOI and PMC id come from the article's own ArticleIdList, not its references'.
    assert review["doi"] == "10.1371/journal.pone.0180707"
    assert review["pmc_id"] == "PMC5546677"
    assert review["pub_date_precision"] == "year"


def test_baseline_file_streams_medline_citations() -> None:
    records = _records(BASELINE)
    first = records[0]
    assert first.record_id == "17942999"
    assert first.record_updated == dt.date(2015, 12, 26)
    assert first.locator == "record 1 (line 5)"
    row = _row(first.payload)
    assert row["pmc_id"] == "PMC4380289"  # OtherID in the 2016 DTD
    assert [s["nlm_category"] for s in row["abstract_sections"]] == ["OBJECTIVE", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert row["authors"][0]["affiliations"] == [
        "Department of Speech Language & Hearing Sciences, Purdue University, West Lafayette, IN 47907-2038, USA."
    ]
    assert row["report_country"] == "US"
    assert records[-1].record_id == "26109528"
    rows = [_row(r.payload) for r in records]
    medline_dates = [r for r in rows if r["pub_date_text"] == "2015 Oct-Dec"]
    assert len(medline_dates) == 59
    assert {r["pub_date"] for r in medline_dates} == {dt.date(2015, 10, 1)}
    with_nct = {r["pmid"]: r["nct_ids"] for r in rows if r["nct_ids"]}
    assert with_nct["26253018"] == ["NCT01384227", "NCT02018367"]
    assert with_nct["21933749"] == ["NCT00585195"]
    assert all(r["pub_year"] for r in rows)


@pytest.mark.parametrize(
    ("text", "expected", "precision"),
    [
        ("2019 Nov-Dec", dt.date(2019, 11, 1), "month"),
        ("1998 Dec-1999 Jan", dt.date(1998, 12, 1), "month"),
        ("2000 Spring", dt.date(2000, 3, 1), "season"),
        ("2000 Spring-Summer", dt.date(2000, 3, 1), "season"),
        ("2011 Fall", dt.date(2011, 9, 1), "season"),
        ("1994 Winter", dt.date(1994, 1, 1), "season"),
        ("2001 Dec 24-31", dt.date(2001, 12, 24), "day"),
        ("1975-1976", dt.date(1975, 1, 1), "year"),
        ("Dec-Jan 1999", dt.date(1999, 12, 1), "month"),
        ("2015 Oct-Dec", dt.date(2015, 10, 1), "month"),
        ("Spring", None, None),
        ("", None, None),
    ],
)
def test_medline_date_forms(text: str, expected: dt.date | None, precision: str | None) -> None:
    assert parse_medline_date(text) == (expected, precision)


@given(st.text(max_size=40))
def test_medline_date_never_raises(text: str) -> None:
    date, precision = parse_medline_date(text)
    assert (date is None) == (precision is None)


# -- malformed input ------------------------------------------------------------------

_GOOD = (
    "<PubmedArticle><MedlineCitation><PMID>{pmid}</PMID><Article><ArticleTitle>T{pmid}</ArticleTitle></Article>"
    "</MedlineCitation></PubmedArticle>"
)


def _read(data: bytes, name: str = "broken.xml") -> list[object]:
    return list(read_input(Input.from_bytes(name, data)))


def test_truncated_file_keeps_records_before_the_break() -> None:
    doc = "<PubmedArticleSet>" + _GOOD.format(pmid=1) + _GOOD.format(pmid=2) + "</PubmedArticleSet>"
    cut = doc.encode()[: len(doc) - 60]
    items = _read(cut)
    records = [i for i in items if isinstance(i, RawRecord)]
    rejects = [i for i in items if isinstance(i, Reject)]
    assert [r.record_id for r in records] == ["1"]
    assert len(rejects) == 1
    assert rejects[0].source == "broken.xml"
    assert "after record 1 (PMID 1)" in rejects[0].problem


def test_record_without_pmid_is_rejected_and_reading_goes_on() -> None:
    doc = (
        "<PubmedArticleSet><PubmedArticle><MedlineCitation><Article/></MedlineCitation></PubmedArticle>"
        + _GOOD.format(pmid=7)
        + "<PubmedArticle><MedlineCitation><PMID>12x</PMID></MedlineCitation></PubmedArticle></PubmedArticleSet>"
    )
    items = _read(doc.encode())
    assert [i.record_id for i in items if isinstance(i, RawRecord)] == ["7"]
    rejects = [i for i in items if isinstance(i, Reject)]
    assert [r.locator.split(" (")[0] for r in rejects] == ["record 1", "record 3"]
    assert "has no PMID" in rejects[0].problem
    assert rejects[1].record_id == "12x"


def test_truncated_gzip_is_a_reject_not_a_crash(tmp_path: Path) -> None:
    data = CURRENT.read_bytes()
    path = tmp_path / "cut.xml.gz"
    path.write_bytes(data[: len(data) // 2])
    items = list(read_path(path))
    assert any(isinstance(i, Reject) for i in items)
    assert all(isinstance(i, RawRecord | Reject) for i in items)


_fragments = st.sampled_from(
    [
        "<PubmedArticleSet>",
        "</PubmedArticleSet>",
        "<PubmedArticle>",
        "</PubmedArticle>",
        "<MedlineCitation>",
        "</MedlineCitation>",
        "<PMID>",
        "</PMID>",
        "123",
        "<Article><ArticleTitle>x</ArticleTitle></Article>",
        "<PubDate><MedlineDate>1998 Dec-1999 Jan</MedlineDate></PubDate>",
        "&amp;",
        "&bogus;",
        "<!DOCTYPE PubmedArticleSet>",
        "\x00",
        "<",
        "]]>",
        "é",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_fragments, max_size=14), st.binary(max_size=20))
def test_malformed_xml_never_raises_and_rejects_name_the_file(parts: list[str], noise: bytes) -> None:
    data = ("<PubmedArticleSet>" + "".join(parts)).encode("utf-8", "replace") + noise
    for item in _read(data, "fuzz.xml"):
        assert isinstance(item, RawRecord | Reject)
        if isinstance(item, Reject):
            assert item.source == "fuzz.xml"
            assert item.problem
        else:
            assert item.record_id.isdigit()
            _row(item.payload)  # a record the reader accepts can be normalised


def test_book_articles_and_delete_citations(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    """efetch also returns NCBI Bookshelf chapters; update files withdraw PMIDs with DeleteCitation."""
    doc = (
        "<PubmedArticleSet><PubmedBookArticle><BookDocument><PMID Version='1'>20301390</PMID>"
        "<Book><Publisher><PublisherName>University of Washington</PublisherName></Publisher>"
        "<BookTitle>GeneReviews</BookTitle><PubDate><Year>1993</Year></PubDate></Book>"
        "<ArticleTitle>A chapter</ArticleTitle><Abstract><AbstractText Label='SUMMARY'>Text.</AbstractText>"
        "</Abstract><PublicationType UI='D016454'>Review</PublicationType></BookDocument>"
        "<PubmedBookData><PublicationStatus>ppublish</PublicationStatus></PubmedBookData></PubmedBookArticle>"
        "<DeleteCitation><PMID Version='1'>123</PMID></DeleteCitation></PubmedArticleSet>"
    )
    path = tmp_path / "books.xml"
    path.write_text(doc)
    stats = atlas.import_files([path])
    assert (stats.seen, stats.new, stats.rejected) == (1, 1, 0)
    row = atlas.sql("SELECT pmid, title, journal, pub_year, abstract, kind FROM publications").iloc[0].tolist()
    assert row == ["20301390", "A chapter", "GeneReviews", 1993, "SUMMARY: Text.", "review"]


_xml_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=60)


@settings(max_examples=100, deadline=None)
@given(
    year=_xml_text,
    month=_xml_text,
    day=_xml_text,
    medline=st.one_of(st.none(), _xml_text),
    affiliation=_xml_text,
    abstract=st.lists(st.tuples(st.one_of(st.none(), _xml_text), _xml_text), max_size=4),
)
def test_normaliser_survives_any_field_content(
    year: str, month: str, day: str, medline: str | None, affiliation: str, abstract: list[tuple[str | None, str]]
) -> None:
    from xml.sax.saxutils import escape, quoteattr

    date = (
        f"<MedlineDate>{escape(medline)}</MedlineDate>"
        if medline is not None
        else (f"<Year>{escape(year)}</Year><Month>{escape(month)}</Month><Day>{escape(day)}</Day>")
    )
    sections = "".join(
        f"<AbstractText{' Label=' + quoteattr(label) if label is not None else ''}>{escape(text)}</AbstractText>"
        for label, text in abstract
    )
    record = (
        "<PubmedArticle><MedlineCitation><PMID>1</PMID><Article><Journal><JournalIssue><PubDate>"
        f"{date}</PubDate></JournalIssue></Journal><ArticleTitle>CAR-T {escape(month)}</ArticleTitle>"
        f"<Abstract>{sections}</Abstract><AuthorList><Author><LastName>X</LastName><AffiliationInfo>"
        f"<Affiliation>{escape(affiliation)}</Affiliation></AffiliationInfo></Author></AuthorList></Article>"
        "</MedlineCitation></PubmedArticle>"
    )
    row = _row(record)
    assert row["pmid"] == "1"
    assert row["pub_date"] is None or isinstance(row["pub_date"], dt.date)
    assert row["kind"] in ("clinical-report", "preclinical", "review", "guideline", "commentary", "other")
