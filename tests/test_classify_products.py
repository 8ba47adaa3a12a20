"""Screening that knows the products (issue 13): each pattern of the issue on the real records it names.

Every record here is a real sample record (../shared/data); its expected answer was worked out by reading
it, and most of them are rows of the adjudicated set (tests/fixtures/adjudicated.csv).  The hand-made
records at the end cover spellings the samples do not hold (Chinese enumerations of antigens).
"""

from __future__ import annotations

from functools import lru_cache
from typing import cast

import pytest

from cartatlas.classify import Classification, classify_trial
from cartatlas.cli.classify import iter_trials
from cartatlas.model import Reject, Trial
from cartatlas.review import _flag_reason
from tests.conftest import DATA

RECON = DATA / "ctgov" / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"
LEGACY_CSV = DATA / "ctgov" / "website_csv" / "legacy_site_b_cell_query_2018.csv"
#: The flag of a trial taken for a CAR trial from a code name (relation with low confidence).
PROBABLE = "relation:probable-car-from-code-name"
#: The flag of a code-named product of a CAR developer that the rules did not count.
UNCOUNTED = "relation:code-name-of-car-developer"


@lru_cache(maxsize=1)
def _recon() -> dict[str, Trial]:
    rejects: list[Reject] = []
    out = {str(t["trial_id"]): t for t in iter_trials([RECON], rejects)}
    assert not rejects
    return out


@lru_cache(maxsize=1)
def _legacy() -> dict[str, Trial]:
    return {str(t["trial_id"]): t for t in iter_trials([LEGACY_CSV], [])}


def recon(nct: str) -> Classification:
    return classify_trial(_recon()[nct])


def rules(c: Classification, decision: str) -> list[str]:
    return [e["rule"] for e in c["evidence"] if e["decision"] == decision]


# -- 1. products named only by a code ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nct", "targets", "platforms"),
    [
        ("NCT07493174", ["CD19"], ["in-vivo-CAR"]),  # SYS6055: a catalogue product, no CAR word
        ("NCT06699771", ["CD5"], ["CAR-NK"]),  # GCC2005 with fludarabine and cyclophosphamide
        ("NCT07647744", ["CD70"], ["CAR-T"]),  # "Anti-Human CD70 T-Cell Injection" from Hrain
    ],
)
def test_catalogue_products_without_a_car_word_are_car_trials(
    nct: str, targets: list[str], platforms: list[str]
) -> None:
    c = recon(nct)
    assert (c["relation"], c["targets"], c["platforms"]) == ("therapy", targets, platforms)


@pytest.mark.parametrize(
    ("nct", "signal"),
    [
        ("NCT06079164", "lymphodepletion"),  # KITE-197 with fludarabine and cyclophosphamide (Kite)
        ("NCT06047197", "cell_product"),  # "RC19D2 cell injection" (Beijing Yongtai Ruike)
        ("NCT07748533", "cell_product"),  # "HY001N Cell Injection" (Juventas), single infusion
        ("NCT05022849", "bridging"),  # JNJ-75229414 listed with "Bridging Therapy" (Janssen)
        ("NCT07376642", "single_infusion"),  # IMV101 single infusion (Immunofoco)
    ],
)
def test_code_named_cell_product_of_a_car_developer_is_a_probable_car_trial(nct: str, signal: str) -> None:
    c = recon(nct)
    assert (c["relation"], c["confidence"]) == ("therapy", "low"), c["evidence"]
    assert PROBABLE in c["flags"]
    assert "relation.code_named_product_of_car_developer" in rules(c, "relation")
    assert any(e["rule"] == "relation.cell_therapy_signal" and e["value"] == "therapy" for e in c["evidence"])
    assert signal in {e["text"].split(":")[0] for e in c["evidence"] if e["rule"] == "relation.cell_therapy_signal"}


def test_a_developer_of_car_products_only_is_evidence_enough_for_a_code_name() -> None:
    # ZM001 from Immunochina, BG1805 from Bio-gene, HN2302 from MagicRNA: no signal in the record, but every
    # product of these developers is a CAR product (developers.csv pipeline = car).
    for nct in ("NCT06852573", "NCT06118788", "NCT07523282"):
        c = recon(nct)
        assert (c["relation"], c["confidence"]) == ("therapy", "low"), (nct, c["evidence"])
        assert "relation.developer_of_car_products_only" in rules(c, "relation"), nct


def test_a_code_prefix_names_the_developer_when_a_hospital_sponsors_the_trial() -> None:
    # IASO208 and IASO104 (IASO Bio), FKC288 (Fosun Kite), IMC008 (Immunofoco), HN2302 and SNC116 in
    # investigator-initiated trials of hospitals.
    for nct in ("NCT07309900", "NCT07185490", "NCT05978661", "NCT05837299", "NCT07413835", "NCT07748156"):
        c = recon(nct)
        assert (c["relation"], c["confidence"]) == ("therapy", "low"), (nct, c["evidence"])
        assert "relation.code_prefix_of_car_developer" in rules(c, "relation"), nct
    # The target of IMC008 is its patients' marker: CLDN18.2-positive tumours.
    assert recon("NCT05837299")["targets"] == ["Claudin18.2"]


def test_a_developer_alone_is_not_proof() -> None:
    # TAK-981 (Takeda, a SUMOylation inhibitor): a code name of a developer of many kinds of products, and no
    # sign of a cell therapy.  Not counted; and not asked about, as the code names of such developers are
    # mostly drugs (a queue of every Novartis or Roche code would drown the CAR trials a curator should see).
    c = recon("NCT03648372")
    assert c["relation"] == "none" and UNCOUNTED not in c["flags"], c["evidence"]
    # One weak sign (a single infusion) is not enough for such a developer either, but it is asked about.
    trial = dict(_recon()["NCT03648372"])
    trial["brief_summary"] = str(trial["brief_summary"]) + " Participants receive a single infusion of TAK-981."
    c = classify_trial(cast(Trial, trial))
    assert c["relation"] == "none" and UNCOUNTED in c["flags"], c["evidence"]
    assert "relation.code_name_without_enough_signs" in rules(c, "relation")
    # Odronextamab (Regeneron), carfilzomib (Amgen), Lyell's biomarker protocol, a Janssen registry: no code-named
    # product at all.
    for nct in ("NCT02290951", "NCT02303821", "NCT05891197", "NCT06472778"):
        c = recon(nct)
        assert c["relation"] == "none" and UNCOUNTED not in c["flags"], (nct, c["evidence"])


def test_other_engineered_receptors_and_cells_without_a_car_developer_stay_none() -> None:
    # GPA-TriMAR-T (a TCR-mimic against a gp100 peptide-MHC, Timmune), ET019002-T and ET019003-T (ARTEMIS
    # antibody-TCR), EBNK-001 (NK cells without a CAR, after lymphodepletion), expanded γδ T cells.
    for nct in ("NCT03649529", "NCT03642496", "NCT04014894", "NCT07410676", "NCT07204496"):
        c = recon(nct)
        assert c["relation"] == "none", (nct, c["evidence"])
        assert PROBABLE not in c["flags"]


def test_engineered_t_cells_of_an_academic_car_developer() -> None:
    # Older CAR trials that name no receptor: "genetically engineered lymphocyte therapy" (Fred Hutch, the CD20
    # CAR of Till et al.), "engineered autologous T cells" targeted to PSMA (MSKCC), HER2/EBV-CTLs in a gene
    # transfer study (Baylor).  MSKCC's "EBV-CTLs genetically targeted to the CD19 antigen" name the CAR by
    # its older name, "artificial T cell receptors", in the outcome.
    for nct in ("NCT00621452", "NCT01140373", "NCT00889954"):
        c = recon(nct)
        assert (c["relation"], c["confidence"]) == ("therapy", "low"), (nct, c["evidence"])
        assert "relation.sponsor_is_car_developer" in rules(c, "relation")
    assert recon("NCT00889954")["targets"] == ["HER2"]
    c = recon("NCT01430390")
    assert (c["relation"], c["targets"]) == ("therapy", ["CD19"]), c["evidence"]
    # The same engineered lymphocytes after transplant, City of Hope (2018 CSV record): CAR-T, target unknown.
    c = classify_trial(_legacy()["NCT01318317"])
    assert (c["relation"], c["targets"]) == ("therapy", ["unknown"]), c["evidence"]
    # A T-cell receptor named anywhere makes engineered cells a TCR-T: NCI's KK-LC-1 TCR gene therapy.
    assert recon("NCT05035407")["relation"] == "none"


def test_long_term_follow_up_of_a_car_developers_products() -> None:
    # A2 Bio's gene-therapy products (Tmod CAR T) and Caribou's investigational therapies: no product named.
    for nct in ("NCT06885424", "NCT05332054"):
        c = recon(nct)
        assert (c["relation"], c["confidence"]) == ("follow_up", "low"), (nct, c["evidence"])
        assert PROBABLE in c["flags"]


def test_ambiguous_code_names_count_only_in_context() -> None:
    # F01 (Simnova's CD19 CAR-NK) is also an ICD-10 code: counted when Simnova sponsors the trial ...
    c = recon("NCT06206902")
    assert (c["relation"], c["products"], c["targets"]) == ("therapy", ["F01"], ["CD19"]), c["evidence"]
    assert "relation.ambiguous_code_with_its_developer" in rules(c, "relation")
    # ... or when the record shows a cell therapy (RenJi Hospital: preconditioning with fludarabine and
    # cyclophosphamide before F01), and not otherwise (a hand-made dementia cohort).
    c = recon("NCT06208280")
    assert (c["relation"], c["products"], c["targets"]) == ("therapy", ["F01"], ["CD19"]), c["evidence"]
    assert "relation.ambiguous_code_with_cell_therapy_signs" in rules(c, "relation")
    dementia = cast(
        Trial,
        {
            "trial_id": "TEST-F01",
            "registry": "test",
            "brief_title": "F01 Vascular Dementia Cohort: Infusion of Saline",
            "interventions": [{"name": "F01"}],
        },
    )
    assert classify_trial(dementia)["relation"] == "none"


def test_the_review_queue_reads_the_new_flags() -> None:
    reason = _flag_reason(PROBABLE, "therapy")
    assert reason is not None and reason.field == "relation" and reason.need >= 55
    reason = _flag_reason(UNCOUNTED, "none")
    assert reason is not None and reason.field == "relation"
    assert _flag_reason("targets:unresolved-antigen", "therapy") is not None


# -- 2. antigen shorthand --------------------------------------------------------------------------


def test_numbered_shorthand() -> None:
    # "CAR-20/19-T" in the title, "Car-T Cells" in the interventions: CD19 and CD20.
    c = recon("NCT04186520")
    assert (c["relation"], sorted(c["targets"])) == ("therapy", ["CD19", "CD20"]), c["evidence"]
    # The same spelling in both stored records of NCT03019055 (the 2018 CSV has only the intervention name).
    for c in (recon("NCT03019055"), classify_trial(_legacy()["NCT03019055"])):
        assert (c["relation"], sorted(c["targets"])) == ("therapy", ["CD19", "CD20"]), c["evidence"]
        assert c["target_strategy"] == "multi-specific-CAR"
    assert recon("NCT04240808")["targets"] == ["CD19"]  # "UCD19 CAR T Cells"


def test_ampersand_and_slash_lists() -> None:
    c = recon("NCT06735495")  # "CD19 & CD22 Bispecific CAR T Cells"
    assert sorted(c["targets"]) == ["CD19", "CD22"] and c["target_strategy"] == "multi-specific-CAR"
    # "4SCAR19 and 4SCAR20/22/70/PSMA/13/79b/GD2": every antigen of the list, CD13 and CD79b too.
    c = recon("NCT04429438")
    assert set(c["targets"]) == {"CD19", "CD20", "CD22", "CD70", "PSMA", "CD13", "CD79b", "GD2"}, c["evidence"]


def test_a_list_in_the_summary_keeps_all_its_antigens() -> None:
    # "an in vivo CAR-T therapy (V001 Injection, targeting BCMA, GPRC5D, DLL3,FcRH5, etc.)"
    trial = dict(_recon()["NCT07395479"])
    c = classify_trial(cast(Trial, trial))
    assert sorted(c["targets"]) == ["BCMA", "DLL3", "FcRH5", "GPRC5D"]
    # The same from the summary alone, without the four interventions that also name them.
    trial["interventions"] = [{"name": "V001 Injection"}]
    c = classify_trial(cast(Trial, trial))
    assert sorted(c["targets"]) == ["BCMA", "DLL3", "FcRH5", "GPRC5D"], c["evidence"]
    assert {e["field"] for e in c["evidence"] if e["decision"] == "targets"} == {"brief_summary"}


@pytest.mark.parametrize(
    "phrase",
    [
        "CD19、CD22双靶点CAR-T细胞",
        "CD19和CD22双靶点CAR-T细胞",
        "CD19及BCMA CAR-T细胞",
        "CD19 and CD22 dual CAR-T cells",
        "CD19 x CD22 CAR-T cells",
        "CD19/CD22 CAR-T cells",
        "CD19+CD22 CAR-T cells",
    ],
)
def test_list_separators(phrase: str) -> None:
    trial = cast(Trial, {"trial_id": "TEST-L", "registry": "test", "brief_title": phrase, "interventions": []})
    c = classify_trial(trial)
    want = ["BCMA", "CD19"] if "BCMA" in phrase else ["CD19", "CD22"]
    assert (c["relation"], sorted(c["targets"])) == ("therapy", want), (phrase, c["evidence"])


def test_an_unresolved_list_item_stays_visible() -> None:
    # "CD19/KLK9 CAR-T": KLK9 is not in the antigen table; CD19 is the target and KLK9 is kept as evidence.
    trial = cast(Trial, {"trial_id": "TEST-U", "registry": "test", "brief_title": "CD19/KLK9 CAR-T cells"})
    c = classify_trial(trial)
    assert c["targets"] == ["CD19"]
    assert [e["text"] for e in c["evidence"] if e["rule"] == "targets.unresolved_antigen"] == ["KLK9"]
    assert "targets:unresolved-antigen" in c["flags"]


# -- 3. antigens anywhere, weighted by where they are and what they attach to ----------------------------


def test_antigen_of_the_patients_marker_when_the_product_names_none() -> None:
    # "SN301A (an off-the-shelf CAR NK cell therapy) in ... glypican-3 (GPC3)-positive advanced HCC"
    c = recon("NCT06652243")
    assert (c["relation"], c["targets"], c["platforms"]) == ("therapy", ["GPC3"], ["CAR-NK"]), c["evidence"]


def test_a_prior_car_t_is_not_a_target() -> None:
    # Anti-CD22 CAR-T in children whose CD19 CAR-T failed; CD20/CD22/CD10 CAR-T after a CD19 CAR-T.
    assert recon("NCT04340167")["targets"] == ["CD22"]
    assert sorted(recon("NCT03407859")["targets"]) == ["CD10", "CD20", "CD22"]


def test_antigen_recognised_by_the_product_in_the_description() -> None:
    # AB-3028 T cells "able to recognize a priming antigen as well as Prostate-Specific Membrane Antigen (PSMA)".
    c = recon("NCT07285694")
    assert (c["relation"], c["targets"]) == ("therapy", ["PSMA"]), c["evidence"]


def test_antigens_listed_after_expression_of() -> None:
    # "personalized immunotherapy ... based on the expression of tumor specific/associated antigens (EGFRVIII,
    # IL13Rα2, Her-2, EphA2, CD133, GD2)"
    c = recon("NCT03423992")
    assert set(c["targets"]) == {"EGFRvIII", "IL13Ra2", "HER2", "EphA2", "CD133", "GD2"}, c["evidence"]


# -- 4. background mentions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "nct",
    [
        "NCT03029273",  # NY-ESO-1 TCR-T: "without any severe side effects found in CAR-T trials"
        "NCT03648697",  # EBV TCR-T: the same sentence
        "NCT07702851",  # polatuzumab + glofitamab: "CAR-T cell therapy may be limited by manufacturing time"
        "NCT07744750",  # pirtobrutinib + sotoclax: CAR-T as one of the later options
    ],
)
def test_background_mentions_are_not_products(nct: str) -> None:
    c = recon(nct)
    assert (c["relation"], c["targets"], c["platforms"]) == ("none", [], []), c["evidence"]
    assert "relation.car_only_as_background" in rules(c, "relation")


# -- 5. product lookups with context ----------------------------------------------------------------


def test_the_catalogue_row_wins_over_a_glued_number() -> None:
    # huMNC2-CAR22: "CAR22" is the construct's name, its target MUC1* (not CD22).
    c = recon("NCT04020575")
    assert c["targets"] == ["MUC1"], c["evidence"]
    assert c["target_strategy"] == "single"


@pytest.mark.parametrize(
    ("nct", "targets"),
    [
        ("NCT06132711", ["BCMA", "TACI", "BAFF-R"]),  # APRIL-BAFF-Bicephali binds BCMA, TACI and BAFF-R, not CD4
        ("NCT06878248", ["HER2"]),  # CLBR001 + ABBV-461: the switch sets the antigen
        ("NCT06913608", ["CD19"]),  # CLBR001 + SWI019
    ],
)
def test_product_lookups(nct: str, targets: list[str]) -> None:
    assert recon(nct)["targets"] == targets


def test_lyl273_is_a_gcc_car_t() -> None:
    # LYL273 (formerly GCC19CART, Lyell from ICT): products.csv; no CAR word in the record.
    c = recon("NCT05319314")
    assert (c["relation"], c["targets"], c["products"]) == ("therapy", ["GUCY2C"], ["LYL273"]), c["evidence"]


# -- 6. the same design labelled one way -----------------------------------------------------------


@pytest.mark.parametrize("nct", ["NCT07185477", "NCT07407010"])
def test_bispecific_bridging_before_car_t_is_ancillary(nct: str) -> None:
    c = recon(nct)
    assert c["relation"] == "ancillary", c["evidence"]


def test_long_term_study_of_a_car_product_is_follow_up() -> None:
    # "Long-term Study to Evaluate Safety and Persistence of GF-CART01", an observational study.
    c = recon("NCT06985576")
    assert c["relation"] == "follow_up", c["evidence"]
    # "A Long-term Study for Participants Previously Treated With Ciltacabtagene Autoleucel" (was therapy).
    c = recon("NCT05201781")
    assert (c["relation"], c["targets"]) == ("follow_up", ["BCMA"]), c["evidence"]


def test_a_transplant_bridging_to_car_t_is_a_combined_strategy() -> None:
    # "ASCT Bridging CART Cell Therapy": the transplant and the CAR-T are the strategy studied, unlike a
    # bispecific antibody bridging to a standard-of-care CAR-T.
    c = recon("NCT04923789")
    assert c["relation"] == "therapy", c["evidence"]


def test_a_switch_receptor_trial_citing_car_t_success_is_none() -> None:
    # PD-1/CD28 chimeric switch receptor T cells; "CAR T cell immunotherapy has achieved great success in CD19+
    # B-cell malignancies" is the field's history.  A switch receptor alone is not a CAR (car_other_meanings).
    c = recon("NCT02937844")
    assert c["relation"] == "none", c["evidence"]
