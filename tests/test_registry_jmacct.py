"""A registry added by its row in ``knowledge/registries.csv`` alone (issue 14): JMACCT.

The Japan Medical Association Center for Clinical Trials (JMACCT) is a member of the Japan Primary
Registries Network; WHO ICTRP exports its trials under the register "JPRN" with trial ids written
``JPRN-JMA-IIA00078`` (the JMACCT id ``JMA-IIA00078`` behind ICTRP's ``JPRN-``), as it does for the
other members (UMIN, jRCT).  Before its row, neither form was recognised: not as an id in another
record's secondary ids or text, and not as a well-formed JPRN id (so the report made no link to it).

No JMACCT record is in ../shared/data.  The ICTRP rows below are HAND-MADE from real ones: the real
JPRN row ``JPRN-UMIN000039686`` and the real ClinicalTrials.gov row ``NCT04324996`` of
``ictrp/COVID19-1135-trials.csv`` are read in place, with ICTRP's columns as they are, and only the
ids are changed (marked ``# hand-made`` where it happens).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

import cartatlas
from cartatlas.explorer import Settings, create_app
from cartatlas.knowledge import registries
from cartatlas.normalise.ictrp import secondary_ids
from cartatlas.report.html import registry_url
from tests.explorer_support import TestClient
from tests.ictrp_samples import ICTRP, csv_rows

COVID = ICTRP / "COVID19-1135-trials.csv"
JMA_ID = "JMA-IIA00078"  # hand-made: a JMACCT id in its published form, JMA-IIA + 5 digits
ICTRP_ID = f"JPRN-{JMA_ID}"  # hand-made: the same trial as ICTRP writes its TrialID


def test_its_ids_are_recognised_alone_in_ictrps_form_and_in_text() -> None:
    assert registries.id_registry(JMA_ID) == "jmacct"
    assert registries.records_registry("jmacct") == "jprn"  # ICTRP lists JMACCT's trials under JPRN
    assert registries.display_name("jmacct") == "JMACCT"
    assert registries.id_registry(ICTRP_ID) == "jprn"
    assert registries.id_matches("jprn", ICTRP_ID) and registries.id_matches("jmacct", JMA_ID)
    text = f"Also registered at JMACCT ({JMA_ID}) and as {ICTRP_ID}; not JMA-IIA0007 (too short)."
    assert registries.find_registry_ids(text) == [("jmacct", JMA_ID), ("jprn", ICTRP_ID)]
    # The existing JPRN forms keep their registries.
    assert registries.id_registry("JPRN-UMIN000039686") == "jprn"
    assert registries.id_registry("JPRN-JapicCTI-194567") == "jprn"


def test_an_ictrp_secondary_id_names_the_registry() -> None:
    ids = secondary_ids({"secondary id": f"{JMA_ID}; 2020-001162-12"}, "ctgov", "NCT04324996")
    assert [(s["id"], s["registry"]) for s in ids] == [(JMA_ID, "jmacct"), ("2020-001162-12", "eudract")]
    # The ICTRP record of the trial itself holds the JMACCT id behind ICTRP's prefix.
    own = secondary_ids({}, "jprn", ICTRP_ID)
    assert [(s["id"], s["registry"]) for s in own] == [(JMA_ID, "jmacct")]


def _ictrp_csv(path: Path) -> None:
    """Two rows of the real export, with ICTRP's real columns; only the ids are changed."""
    rows = {row["TrialID"]: row for row in csv_rows(COVID)}
    jprn = dict(rows["JPRN-UMIN000039686"])
    jprn["TrialID"] = ICTRP_ID  # hand-made
    jprn["web address"] = ""  # hand-made: the UMIN page of the real row is not this trial's
    ctgov = dict(rows["NCT04324996"])
    ctgov["Scientific title"] = f"{ctgov['Scientific title'].strip()} ({JMA_ID})"  # hand-made
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(jprn), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows([jprn, ctgov])
    path.write_text(out.getvalue(), encoding="utf-8")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_its_ictrp_record_is_filed_linked_merged_and_linked_to(tmp_path: Path) -> None:
    source = tmp_path / "ictrp_jmacct.csv"
    _ictrp_csv(source)
    with cartatlas.open(tmp_path / "jmacct.duckdb") as atlas:
        stats = atlas.import_files([source])
        assert (stats.new, stats.rejected) == (2, 0)
        filed = atlas.sql("SELECT registry, trial_id, source_register FROM trials ORDER BY trial_id")
        assert [tuple(r) for r in filed.itertuples(index=False)] == [
            ("jprn", ICTRP_ID, "JPRN"),
            ("ctgov", "NCT04324996", "ClinicalTrials.gov"),
        ]
        links = atlas.sql("SELECT trial_id_a, trial_id_b, method, status FROM trial_links")
        assert [(sorted((r.trial_id_a, r.trial_id_b)), r.method, r.status) for r in links.itertuples()] == [
            (sorted((ICTRP_ID, "NCT04324996")), "id_in_title", "auto")
        ]
        clusters = atlas.sql("SELECT trial_id, cluster_id, cluster_size FROM trial_clusters ORDER BY trial_id")
        assert [tuple(r) for r in clusters.itertuples(index=False)] == [
            (ICTRP_ID, "NCT04324996", 2),
            ("NCT04324996", "NCT04324996", 2),
        ]
    # The report and the explorer link the record through registry_url; before the row, the JPRN id
    # did not match JPRN's pattern and had no link.
    assert registry_url("jprn", ICTRP_ID) == f"https://trialsearch.who.int/Trial2.aspx?TrialID={ICTRP_ID}"
    assert registry_url("jmacct", JMA_ID) == f"https://trialsearch.who.int/Trial2.aspx?TrialID={ICTRP_ID}"
    assert registries.display_name("jprn") == "JPRN"
    with TestClient(create_app(Settings(db=tmp_path / "jmacct.duckdb"), warm=False), base_url="http://127.0.0.1") as c:
        page = c.get(f"/trial/{JMA_ID}")  # the JMACCT id opens the merged trial
        assert page.status_code == 200
        assert "Registrations (2)" in page.text
        assert f'href="https://trialsearch.who.int/Trial2.aspx?TrialID={ICTRP_ID}"' in page.text
