"""Every ClinicalTrials.gov sample file imports, with the record count the file itself shows.

Expected counts come from the files by plain text or the csv module, not from
cartatlas's parsers, so a reader that silently drops or invents records fails.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path

import cartatlas
from cartatlas.model import Reject, Skipped
from cartatlas.sources.files import iter_paths, read_path
from tests.conftest import CTGOV

#: Files in the sample folder that hold no records (licences, a peer's label table).
NON_RECORD_FILES = {"LICENSE.aact", "LICENSE.dgg32", "cart_monitor_2026-08-22.peer_labels.csv"}


def _record_files() -> list[Path]:
    return sorted(p for p in CTGOV.rglob("*") if p.is_file() and p.name not in NON_RECORD_FILES)


def expected_records(path: Path) -> int:
    """How many records the file holds, counted from its text without cartatlas."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    text = data.decode("utf-8-sig")
    if text.lstrip().startswith(("{", "[")):
        if '"FullStudiesResponse"' in text:
            return len(re.findall(r'"NCTId"\s*:', text))
        # Not "nctId": an expanded-access study names its programme by nctId too.
        return len(re.findall(r'"protocolSection"\s*:', text))
    if text.lstrip().startswith("<"):
        studies = len(re.findall(r"<clinical_study[\s>]", text))
        items = len(re.findall(r"<item>", text))
        return studies + items
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return len(rows) - 1


def test_the_sample_folder_has_every_format() -> None:
    names = {p.parent.name for p in _record_files()}
    assert {"api_v2", "classic_api", "legacy_xml", "website_csv", "reconstructed"} <= names
    assert len(_record_files()) >= 98


def test_a_folder_skips_only_what_holds_no_records() -> None:
    skipped = []
    for path, explicit in iter_paths([CTGOV]):
        if path.name in NON_RECORD_FILES:
            (item,) = read_path(path, strict=explicit)
            assert isinstance(item, Skipped), item
            skipped.append(path.name)
    assert sorted(skipped) == sorted(NON_RECORD_FILES)


#: Folders whose files are in the older formats; the others hold API v2 JSON only.
OLDER_FORMATS = ("classic_api", "legacy_xml", "website_csv")


def test_every_v2_sample_file_reads_with_its_record_count() -> None:
    """The v2-only files are read, not stored, here: storing v2 is the store tests' business."""
    for path in _record_files():
        if path.parent.name in OLDER_FORMATS:
            continue
        items = list(read_path(path))
        assert [str(i) for i in items if isinstance(i, Reject | Skipped)] == []
        assert len(items) == expected_records(path), path.name


def test_every_sample_file_imports_with_its_record_count(atlas: cartatlas.Atlas) -> None:
    """One import of the older-format folders; every file's records read, stored and traceable to it."""
    seen_files: list[Path] = []
    folders = [CTGOV / name for name in OLDER_FORMATS]
    total = atlas.import_files(folders, on_file=seen_files.append)
    assert total.rejected == 0, [str(r) for r in total.rejects]
    assert total.skipped == []
    expected = [p for p in _record_files() if p.parent.name in OLDER_FORMATS]
    assert sorted(seen_files) == expected
    counts = {path: expected_records(path) for path in expected}
    assert total.seen == sum(counts.values())
    # Every stored version names the file it came from; no file stored more versions than it holds.
    stored = atlas.sql("SELECT source, count(*) AS n FROM raw_records GROUP BY source")
    for source, n in zip(stored["source"], stored["n"], strict=True):
        assert n <= counts[Path(source)], source
    # A few counts spelled out, as read from the files.
    by_name = {p.name: n for p, n in counts.items()}
    assert by_name["results_1.json"] == by_name["covid-19-search.json"] == 100
    assert by_name["NCT02028676.json"] == 1
    assert by_name["covid_search.xml"] == 5
    assert by_name["empty_search.xml"] == 0
    assert by_name["legacy_site_b_cell_query_2018.csv"] == 1000
    assert by_name["new_site_export_a.csv"] == by_name["new_site_export_b.csv"] == 100
    # The older formats again: identical content adds no version.
    again = atlas.import_files(folders)
    assert again.rejected == 0
    assert (again.new, again.changed) == (0, 0)
    assert again.unchanged == again.seen == sum(n for p, n in counts.items() if p.parent in folders)

    stored = {
        (folder, fmt): n
        for folder, fmt, n in atlas.sql(
            "SELECT regexp_extract(source, '/ctgov/([^/]+)/', 1) AS folder, format, count(DISTINCT record_id) AS n "
            "FROM raw_records GROUP BY 1, 2"
        ).itertuples(index=False, name=None)
    }
    # classic_api also holds 13 studies saved in the v2 layout (12 ids); 203 classic studies are 202 ids.
    assert stored[("classic_api", "ctgov_classic")] == 202
    assert stored[("classic_api", "ctgov_v2")] == 12
    # 70 <clinical_study> files are 63 studies (re-downloads, AACT's modified copies, an aliased id).
    assert stored[("legacy_xml", "ctgov_xml")] == 63
    assert stored[("legacy_xml", "ctgov_rss")] == 5
    # The two current-site exports list the same 100 studies.
    assert stored[("website_csv", "ctgov_csv")] == 1100
    # Every stored record has its normalised row, and no row lacks a stored version.
    orphans = atlas.sql(
        "SELECT count(*) AS n FROM (SELECT DISTINCT registry, record_id FROM raw_records) r "
        "FULL JOIN trials t ON t.registry = r.registry AND t.trial_id = r.record_id "
        "WHERE t.trial_id IS NULL OR r.record_id IS NULL"
    )["n"][0]
    assert orphans == 0


def test_newest_version_is_current_whatever_the_import_order(atlas: cartatlas.Atlas) -> None:
    """NCT00513591 comes as a 2017 record and two 2016 copies: the 2017 one is shown."""
    xml = CTGOV / "legacy_xml"
    atlas.import_files([xml / "NCT00513591.xml"])
    stats = atlas.import_files([xml / "NCT00513591_redownloaded.xml", xml / "NCT00513591_mod.xml"])
    assert (stats.new, stats.changed) == (0, 2)
    assert len(atlas.versions("NCT00513591")) == 3
    row = atlas.trials().set_index("trial_id").loc["NCT00513591"]
    assert row["enrollment"] == 1000
    assert row["official_title"] == "Duke Autoimmunity in Pregnancy Registry"
    assert row["source_format"] == "ctgov_xml"


def test_a_richer_dated_format_wins_over_an_rss_item(atlas: cartatlas.Atlas) -> None:
    """The RSS feed has no update date, so the legacy XML of the same study stays current."""
    xml = CTGOV / "legacy_xml"
    atlas.import_files([xml / "NCT04452435_covid_19.xml"])
    atlas.import_files([xml / "covid_search.xml"])
    row = atlas.trials().set_index("trial_id").loc["NCT04452435"]
    assert row["source_format"] == "ctgov_xml"
    assert len(atlas.versions("NCT04452435")) == 2
