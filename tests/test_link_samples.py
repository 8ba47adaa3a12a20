"""Linking on the real ICTRP samples: registrations of one COVID-19 trial in two registries.

The pairs below were checked by reading both records (title, sponsor,
registration date, sample size, intervention): "same" pairs are one trial,
"apart" pairs are look-alikes that are not.
"""

from __future__ import annotations

import pytest

import cartatlas
from tests.ictrp_samples import sample_db

SAME = [
    ("ChiCTR2000031319", "NCT04336254"),  # dental pulp MSCs, Renmin Hospital of Wuhan University, 20 each
    ("ChiCTR2000030919", "NCT04314271"),  # cardiac and lung ultrasound, Xiangya Hospital, 80 each
    ("ChiCTR2000030987", "NCT04319900"),  # favipiravir + chloroquine, Beijing Chao-yang Hospital, 150 each
    ("ChiCTR2000029603", "NCT04261907"),  # ASC09/ritonavir, First Affiliated Hospital of Zhejiang University
    ("ChiCTR2000030894", "NCT04310228"),  # favipiravir + tocilizumab, Peking University First Hospital
    ("ChiCTR2000030333", "NCT04282902"),  # pirfenidone, Tongji Hospital (the NCT names the investigator)
    ("ChiCTR2000029621", "NCT04260594"),  # arbidol, Ruijin Hospital (the NCT names the investigator)
    ("NCT04327388", "EUCTR2020-001162-12-FR"),  # Sanofi sarilumab
    ("NCT04315948", "EUCTR2020-000936-23-FR"),  # DisCoVeRy, INSERM
    ("ACTRN12620000421932", "JPRN-UMIN000039686"),  # ECMO for COVID-19, The Prince Charles Hospital
    ("NCT04324606", "ISRCTN15281137"),  # ChAdOx1 nCoV-19 (COV001), University of Oxford
    ("EUCTR2020-001236-10-NL", "NL8491"),  # CounterCovid, Amsterdam UMC
]
APART = [
    ("ChiCTR2000030138", "NCT04273646"),  # MSCs in COVID-19: PLA General Hospital vs Wuhan Union Hospital
    ("ChiCTR2000029850", "NCT04343261"),  # convalescent plasma: Zhejiang vs Saint Francis Care (US)
    ("ChiCTR2000030509", "NCT04280224"),  # NK cells: Harbin vs Xinxiang
    ("NCT04315298", "EUCTR2020-001162-12-FR"),  # sarilumab: Regeneron's US trial vs Sanofi's
    ("NCT04341870", "NCT04324047"),  # a CORIMUNO sub-trial names its parent cohort in its criteria
    # The same sponsor (Tongji Hospital, Huilan Zhang) and condition (fibrosis after COVID-19), another drug:
    ("ChiCTR2000030333", "NCT04338802"),  # pirfenidone vs nintedanib
    ("ChiCTR2000031453", "NCT04282902"),  # nintedanib vs pirfenidone
]


@pytest.fixture(scope="module")
def clusters() -> dict[str, tuple[str, int]]:
    with cartatlas.open(sample_db(), read_only=True) as atlas:
        df = atlas.sql("SELECT trial_id, cluster_id, cluster_size FROM trial_clusters")
    return {r.trial_id: (r.cluster_id, int(r.cluster_size)) for r in df.itertuples()}


@pytest.mark.parametrize(("a", "b"), SAME)
def test_two_registrations_of_one_trial_are_one_cluster(clusters: dict[str, tuple[str, int]], a: str, b: str) -> None:
    assert clusters[a] == clusters[b]


@pytest.mark.parametrize(("a", "b"), APART)
def test_look_alike_trials_stay_apart(clusters: dict[str, tuple[str, int]], a: str, b: str) -> None:
    assert clusters[a][0] != clusters[b][0]


def test_every_registration_is_in_exactly_one_cluster_with_a_canonical_id() -> None:
    with cartatlas.open(sample_db(), read_only=True) as atlas:
        counts = atlas.sql(
            "SELECT (SELECT count(*) FROM trials) AS trials, count(*) AS rows, "
            "count(DISTINCT registry || ':' || trial_id) AS distinct_rows, count(DISTINCT cluster_id) AS clusters, "
            "count(*) FILTER (WHERE cluster_size > 1) AS linked FROM trial_clusters"
        ).iloc[0]
        used = atlas.sql("SELECT count(*) AS n FROM trial_links WHERE status IN ('auto', 'confirmed')")["n"][0]
        wrong_canon = atlas.sql(
            "SELECT c.trial_id, c.cluster_id FROM trial_clusters c "
            "WHERE c.cluster_size > 1 AND NOT starts_with(c.cluster_id, 'NCT') AND EXISTS ("
            "  SELECT 1 FROM trial_clusters d WHERE d.cluster_id = c.cluster_id AND d.registry = 'ctgov')"
        )
        chinese = atlas.sql("SELECT cluster_id FROM trial_clusters WHERE trial_id = 'ChiCTR2000031319'")["cluster_id"][
            0
        ]
    assert counts.trials == counts.rows == counts.distinct_rows
    assert counts.clusters == counts.trials - used  # each used link joins two groups (no cycles on the samples)
    assert counts.linked >= 2 * len(SAME)
    assert wrong_canon.empty
    assert chinese == "NCT04336254"


def test_every_link_says_why() -> None:
    import orjson

    with cartatlas.open(sample_db(), read_only=True) as atlas:
        df = atlas.sql("SELECT method, score, status, CAST(evidence AS VARCHAR) AS evidence FROM trial_links")
    assert set(df["status"]) <= {"auto", "candidate"}
    for row in df.itertuples():
        evidence = orjson.loads(row.evidence)
        assert 0.0 <= row.score <= 1.0
        if row.method == "score":
            assert evidence["features"]["title"] >= 0.3
            if row.status == "auto":
                assert row.score >= 0.62 and evidence["corroborated"]
