"""Legacy per-study XML (``<clinical_study>``) and the old RSS feeds, read and normalised field by field.

Expected values are read off the files in legacy_xml/; the AACT copies that
were modified on purpose (``*_mod``, ``*-id-mismatch``, ...) are checked for
the behaviour each one calls for.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cartatlas
from cartatlas.model import RawRecord, Reject, Trial
from cartatlas.normalise import format_spec
from cartatlas.normalise.ctgov_xml import xml_to_v2
from cartatlas.sources.base import Input
from cartatlas.sources.files import read_input, read_path
from tests.conftest import CTGOV

XML = CTGOV / "legacy_xml"


def _record(path: Path) -> RawRecord:
    (item,) = read_path(path)
    assert isinstance(item, RawRecord), item
    return item


def _trial(path: Path) -> Trial:
    rec = _record(path)
    return format_spec(rec.format).to_trial(rec.payload)


@pytest.fixture(scope="module")
def fluconazole() -> Trial:
    """NCT00734539: a phase 3 trial at 33 US sites with results and a U.S. Fed collaborator."""
    return _trial(XML / "NCT00734539.xml")


def test_identity_status_and_dates(fluconazole: Trial) -> None:
    t = fluconazole
    assert t["trial_id"] == t["nct_id"] == "NCT00734539"
    assert t["source_format"] == "ctgov_xml"
    assert t["org_study_id"] == "Pro00001538"
    assert [s["id"] for s in t["secondary_ids"]] == ["1R01HD057956-01", "Pro00017720"]
    assert t["brief_title"] == (
        "Fluconazole Prophylaxis for the Prevention of Candidiasis in Infants Less Than 750 Grams Birthweight"
    )
    # The XML escapes "<" as "&lt;"; the title says "<".
    assert (
        t["official_title"] == "Fluconazole Prophylaxis for the Prevention of Candidiasis in Infants < 750 Grams Birth"
    )
    assert t["overall_status"] == "COMPLETED"
    assert t["study_type"] == "INTERVENTIONAL"
    assert t["phases"] == ["PHASE3"]
    assert t["first_submitted"] == dt.date(2008, 8, 13)
    assert t["first_posted"] == dt.date(2008, 8, 14)  # <study_first_posted type="Estimate">August 14, 2008
    assert t["start_date"] == dt.date(2008, 11, 1)  # November 2008
    assert t["primary_completion_date"] == dt.date(2011, 12, 1)
    assert t["completion_date"] == dt.date(2013, 4, 1)
    assert t["last_update_posted"] == dt.date(2014, 8, 1)
    assert t["has_results"] is True


def test_sponsors_arms_eligibility_and_sites(fluconazole: Trial) -> None:
    t = fluconazole
    assert (t["lead_sponsor"], t["lead_sponsor_class"]) == ("Daniel Benjamin", "OTHER")
    assert [(c["name"], c["sponsor_class"]) for c in t["collaborators"]] == [
        ("Eunice Kennedy Shriver National Institute of Child Health and Human Development (NICHD)", "NIH"),
        ("Thrasher Research Fund", "OTHER"),
        ("Food and Drug Administration (FDA)", "FED"),  # "U.S. Fed"
    ]
    assert t["conditions"] == ["Candidiasis"]
    assert t["keywords"] == ["Candida", "Neonate", "Fluconazole", "Prophylaxis", "Colonization", "Resistance"]
    assert t["mesh_terms"] == ["Candidiasis", "Fluconazole"]
    assert t["interventions"][0] == {
        "type": "DRUG",
        "name": "fluconazole",
        "other_names": ["Diflucan"],
        "description": t["interventions"][0]["description"],
    }
    assert [(a["label"], a["type"], a["intervention_names"]) for a in t["arm_groups"]] == [
        ("1", "EXPERIMENTAL", ["Drug: fluconazole"]),
        ("2", "PLACEBO_COMPARATOR", ["Drug: placebo"]),
    ]
    assert t["sex"] == "ALL"
    assert (t["minimum_age"], t["maximum_age"]) == (None, "5 Days")  # minimum "N/A"
    assert (t["enrollment"], t["enrollment_type"]) == (362, "ACTUAL")
    assert t["primary_outcomes"] == ["Death or Candidiasis"]
    assert len(t["sites"]) == 33
    first = t["sites"][0]
    assert (first["facility"], first["city"], first["state"], first["zip"]) == (
        "University of Alabama at Birmingham",
        "Birmingham",
        "Alabama",
        "35233",
    )
    assert {s["country_code"] for s in t["sites"]} == {"US"}
    assert t["countries"] == ["US"]


def test_record_metadata_and_payload() -> None:
    rec = _record(XML / "NCT00734539.xml")
    assert rec.format == "ctgov_xml" and rec.locator == ""
    assert rec.record_updated == dt.date(2014, 8, 1)
    # The text as received, with CRLF read as XML reads it.
    raw = (XML / "NCT00734539.xml").read_bytes().decode("utf-8")
    assert "\r\n" in raw
    assert rec.payload == raw.replace("\r\n", "\n")


def test_multinational_sites_and_an_alias() -> None:
    t = _trial(XML / "NCT00081588.xml")
    assert len(t["sites"]) == 68
    assert set(t["countries"]) == {"US", "DE", "FR", "BR", "AU", "BE", "CA", "ES", "GB", "AT", "PT", "AR", "HU"}
    berlin = [s for s in t["sites"] if s["city"] == "Berlin"]
    assert [(s["facility"], s["country"], s["country_code"]) for s in berlin] == [(None, "Germany", "DE")]
    assert {"id": "NCT00980226", "type": "NCT_ALIAS", "domain": None, "registry": "ctgov"} in t["secondary_ids"]
    assert t["phases"] == ["PHASE2"]
    assert (t["lead_sponsor"], t["lead_sponsor_class"]) == ("Tibotec Pharmaceuticals, Ireland", "INDUSTRY")


def test_older_xml_dates_and_design_text() -> None:
    """Files from before 2017 say firstreceived_date/lastchanged_date and a one-line study_design."""
    rec = _record(XML / "NCT00513591_redownloaded.xml")
    assert rec.record_updated == dt.date(2016, 6, 14)  # <lastchanged_date>June 14, 2016
    v2 = xml_to_v2(rec.payload)
    status = v2["protocolSection"]["statusModule"]
    assert status["studyFirstSubmitDate"] == "2007-08-06"
    assert status["lastUpdateSubmitDate"] == "2016-06-14"
    assert "studyFirstPostDateStruct" not in status
    assert v2["protocolSection"]["designModule"]["designInfo"] == {
        "observationalModel": "COHORT",
        "timePerspective": "PROSPECTIVE",
    }
    assert v2["protocolSection"]["designModule"]["phases"] == ["NA"]


@pytest.mark.parametrize(
    ("name", "status", "study_type", "sex"),
    [
        ("NCT03182660.xml", "WITHHELD", None, None),  # study_type "N/A", everything redacted
        ("NCT01220531.xml", "AVAILABLE", "EXPANDED_ACCESS", "ALL"),
        ("NCT01076361.xml", "COMPLETED", "OBSERVATIONAL", "ALL"),  # "Observational [Patient Registry]"
        ("raw_study_changed.xml", "COMPLETED", "INTERVENTIONAL", "ALL"),  # gender "Both"
    ],
)
def test_enum_spellings_come_out_in_v2_form(name: str, status: str, study_type: str | None, sex: str | None) -> None:
    t = _trial(XML / name)
    assert (t["overall_status"], t["study_type"], t["sex"]) == (status, study_type, sex)


def test_registry_flag_and_expanded_access_types() -> None:
    registry = xml_to_v2(_record(XML / "NCT01076361.xml").payload)["protocolSection"]["designModule"]
    assert registry["patientRegistry"] is True
    expanded = xml_to_v2(_record(XML / "NCT01220531.xml").payload)["protocolSection"]["designModule"]
    assert expanded["expandedAccessTypes"] == {"intermediate": True, "treatment": True}


# -- the same study twice ------------------------------------------------------------------------------

_SAME_FIELDS = (
    "nct_id",
    "org_study_id",
    "brief_title",
    "official_title",
    "acronym",
    "overall_status",
    "study_type",
    "phases",
    "first_submitted",
    "first_posted",
    "start_date",
    "primary_completion_date",
    "completion_date",
    "last_update_posted",
    "lead_sponsor",
    "conditions",
    "keywords",
    "interventions",
    "sex",
    "minimum_age",
    "maximum_age",
    "enrollment",
    "enrollment_type",
    "primary_outcomes",
    "countries",
    "has_results",
)


def test_classic_and_xml_of_one_study_agree() -> None:
    """ARROW (NCT02028676) as classic API JSON and as legacy XML."""
    xml = _trial(XML / "NCT02028676.xml")
    (rec,) = read_path(CTGOV / "classic_api" / "NCT02028676.json")
    assert isinstance(rec, RawRecord)
    classic = format_spec(rec.format).to_trial(rec.payload)
    for field in _SAME_FIELDS:
        assert xml[field] == classic[field], field  # type: ignore[literal-required]
    assert [s["id"] for s in xml["secondary_ids"]] == [s["id"] for s in classic["secondary_ids"]]
    assert [c["name"] for c in xml["collaborators"]] == [c["name"] for c in classic["collaborators"]]
    assert [(a["label"], a["type"], a["intervention_names"]) for a in xml["arm_groups"]] == [
        (a["label"], a["type"], a["intervention_names"]) for a in classic["arm_groups"]
    ]
    assert [(s["facility"], s["city"], s["country_code"]) for s in xml["sites"]] == [
        (s["facility"], s["city"], s["country_code"]) for s in classic["sites"]
    ]
    # Free text is wrapped differently but says the same; the legacy XML knew no OTHER_GOV class.
    assert " ".join((xml["detailed_description"] or "").split()) == " ".join(
        (classic["detailed_description"] or "").split()
    )
    assert (xml["lead_sponsor_class"], classic["lead_sponsor_class"]) == ("OTHER", "OTHER_GOV")


def test_two_downloads_of_one_study_agree_where_the_record_did_not_change() -> None:
    new, old = _trial(XML / "NCT00513591.xml"), _trial(XML / "NCT00513591_redownloaded.xml")
    stable: tuple[str, ...] = (
        "org_study_id",
        "brief_title",
        "official_title",
        "acronym",
        "overall_status",
        "study_type",
    )
    stable += ("first_submitted", "start_date", "lead_sponsor", "lead_sponsor_class", "conditions", "keywords")
    stable += ("sex", "minimum_age", "maximum_age", "enrollment_type", "sites", "countries", "brief_summary")
    for field in stable:
        assert new[field] == old[field], field  # type: ignore[literal-required]
    # What the sponsor updated between 2016 and 2017:
    assert (old["enrollment"], new["enrollment"]) == (500, 1000)
    assert (old["primary_completion_date"], new["primary_completion_date"]) == (
        dt.date(2017, 12, 1),
        dt.date(2018, 6, 1),
    )


def test_rss_item_agrees_with_the_study_xml() -> None:
    items = [i for i in read_path(XML / "covid_search.xml") if isinstance(i, RawRecord)]
    (item,) = [i for i in items if i.record_id == "NCT04452435"]
    assert item.format == "ctgov_rss" and item.locator == "item 3" and item.record_updated is None
    rss = format_spec("ctgov_rss").to_trial(item.payload)
    xml = _trial(XML / "NCT04452435_covid_19.xml")
    for field in ("nct_id", "brief_title", "overall_status", "first_posted", "lead_sponsor", "conditions"):
        assert rss[field] == xml[field], field
    assert rss["first_posted"] == dt.date(2020, 6, 30)
    assert rss["collaborators"] == [{"name": "Orphan Reach", "sponsor_class": None}]
    assert [(i["type"], i["name"]) for i in rss["interventions"]] == [("DRUG", "C21"), ("DRUG", "Placebo")]
    assert [(i["type"], i["name"]) for i in xml["interventions"]] == [("DRUG", "C21"), ("DRUG", "Placebo")]


def test_rss_feeds() -> None:
    items = list(read_path(XML / "covid_search.xml"))
    assert [i.record_id for i in items if isinstance(i, RawRecord)] == [
        "NCT04425629",
        "NCT04495101",
        "NCT04452435",
        "NCT04464408",
        "NCT04761510",
    ]
    assert list(read_path(XML / "empty_search.xml")) == []


# -- versions --------------------------------------------------------------------------------------------


def test_redownload_with_a_new_date_stamp_is_unchanged(atlas: cartatlas.Atlas) -> None:
    """NCT00980226.xml is NCT00081588 (its alias) downloaded three days later, otherwise identical."""
    first = atlas.import_files([XML / "NCT00081588.xml"])
    again = atlas.import_files([XML / "NCT00980226.xml"])
    assert (first.new, again.new, again.changed, again.unchanged) == (1, 0, 0, 1)


def test_line_endings_are_not_content(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    crlf = (XML / "NCT00734539.xml").read_bytes()
    assert b"\r\n" in crlf
    lf = tmp_path / "NCT00734539.xml"
    lf.write_bytes(crlf.replace(b"\r\n", b"\n"))
    atlas.import_files([XML / "NCT00734539.xml"])
    again = atlas.import_files([lf])
    assert (again.new, again.changed, again.unchanged) == (0, 0, 1)


def test_search_rank_comments_and_wrapping_are_not_content(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    text = (XML / "NCT00734539.xml").read_bytes().decode("utf-8")
    assert text.count("<!--") > 5 and "<clinical_study>" in text
    same = text.replace("<clinical_study>", '<clinical_study rank="7">').replace("    ", "      ")
    same = same.replace("processed this data on May 11, 2018", "processed this data on June 1, 2019")
    same = "".join(part.split("-->", 1)[-1] for part in same.split("<!--"))
    edited = text.replace("Infants &lt; 750 Grams Birth", "Infants &lt; 750 Grams Birth Weight")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "NCT00734539.xml").write_text(same, encoding="utf-8")
    (tmp_path / "b" / "NCT00734539.xml").write_text(edited, encoding="utf-8")
    atlas.import_files([XML / "NCT00734539.xml"])
    again = atlas.import_files([tmp_path / "a"])
    assert (again.new, again.changed, again.unchanged) == (0, 0, 1)
    changed = atlas.import_files([tmp_path / "b"])
    assert (changed.new, changed.changed, changed.unchanged) == (0, 1, 0)


def test_alias_explains_a_file_name_but_a_bare_mismatch_is_rejected(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    # AACT's NCT00980226-id-mismatch.xml holds NCT00081588, which lists NCT00980226 as an alias.
    stats = atlas.import_files([XML / "NCT00980226-id-mismatch.xml"])
    assert (stats.new, stats.rejected) == (1, 0)
    assert list(atlas.trials()["trial_id"]) == ["NCT00081588"]
    # The same file without the alias no longer explains its name.
    text = (XML / "NCT00980226-id-mismatch.xml").read_text(encoding="utf-8")
    assert "<nct_alias>NCT00980226</nct_alias>" in text
    bad = tmp_path / "NCT00980226.xml"
    bad.write_text(text.replace("<nct_alias>NCT00980226</nct_alias>", ""), encoding="utf-8")
    stats = atlas.import_files([bad])
    (reject,) = stats.rejects
    assert reject.source == str(bad)
    assert reject.record_id == "NCT00081588"
    assert "NCT00980226" in reject.problem and "NCT00081588" in reject.problem


def test_allpublicxml_zip(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    """The bulk download: a zip of NCTxxxx/NCT...xml files, plus a stray README."""
    archive = tmp_path / "AllPublicXML.zip"
    names = ["NCT00734539.xml", "NCT00081588.xml", "NCT03182660.xml"]
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for name in names:
            z.writestr(f"{name[:7]}xxxx/{name}", (XML / name).read_bytes())
        z.writestr("Contents.txt", "Study list")
    stats = atlas.import_files([archive])
    assert (stats.seen, stats.new, stats.rejected) == (3, 3, 0)
    assert [Path(s.source).name for s in stats.skipped] == ["AllPublicXML.zip!Contents.txt"]
    sources = set(atlas.sql("SELECT source FROM raw_records")["source"])
    assert f"{archive}!NCT0073xxxx/NCT00734539.xml" in sources


# -- broken input ----------------------------------------------------------------------------------------


def test_study_without_nct_id_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "study.xml"
    path.write_text("<?xml version='1.0'?><clinical_study><brief_title>x</brief_title></clinical_study>")
    (reject,) = read_path(path)
    assert isinstance(reject, Reject) and reject.source == str(path) and "no NCT id" in reject.problem


def test_rss_item_without_id_is_rejected_by_place(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(
        "<rss version='2.0'><channel><link>https://clinicaltrials.gov/ct2/results/rss.xml</link>"
        "<item><title>a</title><link>https://clinicaltrials.gov/ct2/show/NCT04425629</link></item>"
        "<item><title>b</title><link>https://clinicaltrials.gov/ct2/show/</link></item>"
        "</channel></rss>"
    )
    good, bad = read_path(path)
    assert isinstance(good, RawRecord) and good.record_id == "NCT04425629"
    assert isinstance(bad, Reject) and bad.locator == "item 2" and "no NCT id" in bad.problem


def test_feeds_from_elsewhere_are_not_claimed(tmp_path: Path) -> None:
    path = tmp_path / "news.xml"
    path.write_text("<rss version='2.0'><channel><link>https://example.org/</link></channel></rss>")
    (reject,) = read_path(path)
    assert isinstance(reject, Reject) and "unrecognised format" in reject.problem


_SAMPLE = (XML / "NCT00513591.xml").read_bytes()


@settings(max_examples=80, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(_SAMPLE)))
def test_truncated_xml_is_a_reject_naming_the_input(cut: int) -> None:
    items = list(read_input(Input.from_bytes("cut.xml", _SAMPLE[:cut])))
    if cut == len(_SAMPLE) or _SAMPLE[cut:].strip() == b"":
        assert [type(i) for i in items] == [RawRecord]
        return
    assert len(items) == 1
    item = items[0]
    assert isinstance(item, Reject) and item.source == "cut.xml" and item.problem


_NOT_ARCHIVES = st.binary(max_size=400).filter(lambda b: b[:2] != b"\x1f\x8b" and b[:4] != b"PK\x03\x04")


@settings(max_examples=150, deadline=None)
@given(data=_NOT_ARCHIVES)
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    for prefix in (b"", b"<clinical_study>", b'<?xml version="1.0"?>\n<rss><!-- clinicaltrials.gov -->'):
        for item in read_input(Input.from_bytes("fuzz.xml", prefix + data)):
            assert isinstance(item, RawRecord | Reject)
            if isinstance(item, Reject):
                assert item.source == "fuzz.xml" and item.problem


_ELEMENTS = st.sampled_from(
    [
        "nct_id",
        "id_info",
        "nct_alias",
        "location",
        "facility",
        "address",
        "country",
        "enrollment",
        "phase",
        "start_date",
        "last_update_posted",
        "intervention",
        "arm_group_label",
        "sponsors",
        "lead_sponsor",
        "eligibility",
        "textblock",
    ]
)


@st.composite
def _xml_tree(draw: Any, depth: int = 0) -> str:
    children = draw(st.lists(_ELEMENTS, max_size=0 if depth > 2 else 4))
    parts = []
    for tag in children:
        text = draw(st.sampled_from(["", "NCT01234567", "Phase 1/Phase 2", "June 2017", "12", "Both", "x & y"]))
        inner = draw(_xml_tree(depth + 1)) if draw(st.booleans()) else ""
        attr = draw(st.sampled_from(["", ' type="Anticipated"', ' type="odd"']))
        parts.append(f"<{tag}{attr}>{text.replace('&', '&amp;')}{inner}</{tag}>")
    return "".join(parts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_xml_tree())
def test_odd_study_xml_stores_whole_or_not_at_all(atlas: cartatlas.Atlas, tmp_path: Path, body: str) -> None:
    path = tmp_path / "study.xml"
    path.write_text(f"<clinical_study>{body}</clinical_study>", encoding="utf-8")
    stats = atlas.import_files([path])
    assert stats.seen == 1 or stats.rejected == 1
    assert all(r.source == str(path) and r.problem for r in stats.rejects)
    missing = atlas.sql(
        "SELECT count(*) AS n FROM raw_records r LEFT JOIN trials t "
        "ON t.registry = r.registry AND t.trial_id = r.record_id WHERE t.trial_id IS NULL"
    )["n"][0]
    assert missing == 0


def test_corrupt_gzip_is_a_reject() -> None:
    data = bytearray(gzip.compress((XML / "NCT00734539.xml").read_bytes()))
    data[40] ^= 0xFF
    items = list(read_input(Input.from_bytes("study.xml.gz", bytes(data))))
    assert all(isinstance(i, Reject) for i in items)


def test_gzipped_xml_reads(tmp_path: Path) -> None:
    path = tmp_path / "study.xml.gz"
    path.write_bytes(gzip.compress((XML / "NCT00734539.xml").read_bytes()))
    (rec,) = read_path(path)
    assert isinstance(rec, RawRecord) and rec.record_id == "NCT00734539"
    assert io.BytesIO(gzip.decompress(path.read_bytes())).read(5) == b"<?xml"


# -- entity references ------------------------------------------------------------------------------------

_TITLE = "<brief_title>Study of Premenstrual Syndrome and Premenstrual Dysphoria</brief_title>"


def _edited_study(tmp_path: Path, doctype: str, title: str) -> Path:
    """NCT00001177.xml with a DOCTYPE before the root and its brief title replaced."""
    text = (XML / "NCT00001177.xml").read_text(encoding="utf-8")
    assert _TITLE in text
    text = text.replace("<clinical_study>", f"{doctype}\n<clinical_study>", 1).replace(_TITLE, title)
    path = tmp_path / "NCT00001177.xml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("doctype", "title", "expected"),
    [
        # Declared in the file's own DOCTYPE: not expanded (cartatlas expands no entity), kept as written.
        ('<!DOCTYPE clinical_study [<!ENTITY foo "Foo">]>', "<brief_title>&foo;</brief_title>", "&foo;"),
        (
            '<!DOCTYPE clinical_study [<!ENTITY foo "Foo">]>',
            "<brief_title>Study &foo; of PMS</brief_title>",
            "Study &foo; of PMS",
        ),
        # Declared, perhaps, in a DTD that is not read.
        (
            '<!DOCTYPE clinical_study SYSTEM "ctgov.dtd">',
            "<brief_title>&foo; and &bar;</brief_title>",
            "&foo; and &bar;",
        ),
        # The predefined ones and character references are text as usual.
        ("", "<brief_title>Study &amp; &#38; &lt;b&gt; of PMS</brief_title>", "Study & & <b> of PMS"),
    ],
)
def test_an_entity_reference_in_a_title_is_kept_as_written(
    atlas: cartatlas.Atlas, tmp_path: Path, doctype: str, title: str, expected: str
) -> None:
    path = _edited_study(tmp_path, doctype, title)
    stats = atlas.import_files([path], classify=False)
    assert (stats.new, stats.rejected) == (1, 0)
    stored = atlas.sql("SELECT brief_title, official_title FROM trials WHERE trial_id = 'NCT00001177'")
    assert stored["brief_title"][0] == expected
    assert stored["official_title"][0].startswith("The Evaluation of Women")


def test_an_undefined_entity_without_a_doctype_is_a_reject_naming_it(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    path = _edited_study(tmp_path, "", "<brief_title>Study &foo; of PMS</brief_title>")
    stats = atlas.import_files([path], classify=False)
    assert (stats.new, stats.rejected) == (0, 1)
    assert "Entity 'foo' not defined" in stats.rejects[0].problem and "line 16" in stats.rejects[0].problem


def test_an_entity_reference_in_the_id_or_a_feed_item_is_kept_too(tmp_path: Path) -> None:
    feed = (XML / "covid_search.xml").read_text(encoding="utf-8")
    feed = feed.replace("<rss ", '<!DOCTYPE rss [<!ENTITY reg "Regeneron">]>\n<rss ', 1)
    feed = feed.replace("<title>Safety, Tolerability,", "<title>&reg; Safety, Tolerability,", 1)
    path = tmp_path / "feed.xml"
    path.write_text(feed, encoding="utf-8")
    items = [i for i in read_path(path) if isinstance(i, RawRecord)]
    trial = format_spec("ctgov_rss").to_trial(items[0].payload)
    assert trial["brief_title"] is not None and trial["brief_title"].startswith("&reg; Safety, Tolerability,")
