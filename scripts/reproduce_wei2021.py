"""Compare cartatlas's landscape with the numbers of Wei et al., Cell Mol Immunol 2021, number by number.

Usage::

    python scripts/reproduce_wei2021.py                   # the sample data -> docs/reproduction.md
    python scripts/reproduce_wei2021.py --db full.duckdb  # after a full registry sync

The review's numbers are data (cartatlas/knowledge/reference_wei2021.csv, a
source note per number); cartatlas's are computed through the same API the
report uses (``Atlas.landscape``), counting CAR-T trials (``--platform``) per
trial as of 2020-06-30 with China (including Taiwan) as the focus.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import cartatlas
from cartatlas.analysis.landscape import Landscape
from cartatlas.knowledge import knowledge_version, read_table

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data"
SAMPLE_FOLDERS = ("ctgov", "ictrp", "chictr", "pubmed")


def reference() -> dict[str, tuple[int, str]]:
    return {row["metric"]: (int(row["value"]), row["source"]) for row in read_table("reference_wei2021.csv")}


def ctgov_metrics(land: Landscape) -> dict[str, int]:
    """Every ClinicalTrials.gov metric of the reference, computed from one landscape."""
    out: dict[str, int] = {}
    units = land.units
    for group, n in land.facts["totals"]["by_group"].items():
        out[f"ctgov.by_group.{group}"] = n
    out["ctgov.china.from_taiwan"] = land.facts["totals"]["focus_subregions"].get("TW", 0)
    # "By January 2015" counts registrations before that day; "June 2017" up to its end.
    for cut, inclusive in (("2015-01-01", False), ("2016-01-01", False), ("2017-06-30", True)):
        day = dt.date.fromisoformat(cut)
        before = units[units["registration_date"].map(lambda d, day=day, inc=inclusive: d <= day if inc else d < day)]
        for group in ("China", "United States", "Other countries"):
            out[f"ctgov.cumulative.{cut}.{group}"] = int(before["groups"].map(lambda gs, g=group: g in gs).sum())
    for _, row in land.tables["phase_by_group"].iterrows():
        out[f"ctgov.phase.{row['group']}.{row['phase_category']}"] = int(row["n"])
    for kind in ("heme", "solid"):
        for _, row in land.tables[f"focus_targets_{kind}"].iterrows():
            t = row["target"]
            out[f"ctgov.{kind}.{t}.n"] = int(row["n"])
            out[f"ctgov.{kind}.{t}.alone"] = int(row["alone"])
            out[f"ctgov.{kind}.{t}.in_combination"] = int(row["in_combination"])
            for partner, n in row["partners"].items():
                out[f"ctgov.{kind}.{t}.with.{partner}"] = int(n)
    out["ctgov.solid.trials"] = land.facts["totals"]["focus_solid"]
    return out


def pubmed_metrics(atlas: cartatlas.Atlas, as_of: dt.date) -> dict[str, int]:
    """Fig. 2's numbers from the stored PubMed records (none when the database holds no articles)."""
    from cartatlas.analysis.publications import clinical_reports

    reports = clinical_reports(atlas.store, as_of, "CN")
    if reports.empty:
        return {}
    china = reports[reports["group"] == "China"]
    return {
        "pubmed.china.clinical_reports": len(china),
        "pubmed.china.heme": int((china["disease_branch"] == "heme-malignancy").sum()),
        "pubmed.china.solid": int((china["disease_branch"] == "solid-tumor").sum()),
        "pubmed.other.clinical_reports": int(reports["group"].isin(["United States", "Other countries"]).sum()),
    }


def explain(metric: str, ours: int | None, theirs: int, pubmed_stored: int = 0) -> str:
    """Why a number differs, by the kind of number (the reasons are the sample's and the method's)."""
    if ours is None:
        if metric.startswith("chictr"):
            return "no ChiCTR CAR-T records in this database (import an ICTRP export or run `cartatlas sync chictr`)"
        if metric.startswith("pubmed") and pubmed_stored:
            return (
                f"none of the {pubmed_stored:,} PubMed records in this database is a CAR clinical report "
                "(run `cartatlas sync pubmed`)"
            )
        if metric.startswith("pubmed"):
            return "no PubMed records in this database (run `cartatlas sync pubmed`)"
        return "no trial with this label in this database"
    if ours == theirs:
        return "same"
    if ours < theirs:
        return "fewer: the sample holds only the trials two dashboards kept in 2026 (see below)"
    if metric.startswith("ctgov.phase") or ".Other countries" in metric:
        return "more: 2026 records carry phases and sites added after 2020 (see below)"
    return "more: see below (screening by rules; 2026 records)"


def build_sample_db(path: Path) -> None:
    """What the main job builds: every sample registry and PubMed, linked."""
    with cartatlas.open(path) as atlas:
        atlas.import_files([SAMPLE / name for name in SAMPLE_FOLDERS])
        atlas.link()
        atlas.link_publications()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, help="a cartatlas database (default: build one from the sample data)")
    parser.add_argument("--as-of", default="2020-06-30")
    parser.add_argument("--platform", action="append", default=None, help="platforms counted (default CAR-T)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reproduction.md")
    args = parser.parse_args()
    platforms = args.platform or ["CAR-T"]
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db
        if db is None:
            db = Path(tmp) / "sample.duckdb"
            build_sample_db(db)
        with cartatlas.open(db) as atlas:
            land = atlas.landscape(args.as_of, "CN", platforms=platforms, registries=["ctgov"])
            ours: dict[str, Any] = ctgov_metrics(land)
            chictr = atlas.landscape("2020-08-31", "CN", platforms=platforms, registries=["chictr"])
            if len(chictr.units):
                ours["chictr.trials"] = len(chictr.units)
                for _, row in chictr.tables["focus_phase"].iterrows():
                    ours[f"chictr.phase.{row['phase_category']}"] = int(row["n"])
                ours["chictr.CD19"] = int(chictr.units["targets"].map(lambda ts: "CD19" in ts).sum())
            ours.update(pubmed_metrics(atlas, dt.date.fromisoformat(args.as_of)))
            snapshot = atlas.summary()
            if args.db is None:
                snapshot["database"] = "built from ../shared/data/{" + ",".join(SAMPLE_FOLDERS) + "}"
    write(args.out, ours, land, snapshot, args, platforms)


def write(
    out: Path, ours: dict[str, Any], land: Landscape, snapshot: dict[str, Any], args: Any, platforms: list[str]
) -> None:
    ref = reference()
    pubmed_stored = next((r["records"] for r in snapshot["registries"] if r["registry"] == "pubmed"), 0)
    rows = []
    agree = close = 0
    for metric, (theirs, _source) in ref.items():
        value = ours.get(metric)
        if value is not None and theirs:
            ratio = value / theirs
            agree += value == theirs
            close += abs(ratio - 1) <= 0.15
        rows.append(
            f"| `{metric}` | {theirs} | {'' if value is None else value} | "
            f"{'' if value is None else f'{value - theirs:+d}'} | {explain(metric, value, theirs, pubmed_stored)} |"
        )
    compared = sum(1 for m in ref if ours.get(m) is not None)
    notes = land.notes
    phase_changed, stored = land.facts["as_of"]["phase_changed_later"], land.facts["as_of"]["stored_version"]
    lines = [
        "# Reproducing Wei et al., Cell Mol Immunol 2021 (PMID 32999455)",
        "",
        "Generated by `python scripts/reproduce_wei2021.py` "
        f"on {dt.date.today().isoformat()} (cartatlas {cartatlas.__version__}, knowledge base {knowledge_version()}).",
        f"Database: `{snapshot['database']}`; "
        + "; ".join(f"{r['registry']} {r['records']:,} records" for r in snapshot["registries"])
        + ".",
        f"Counting: {', '.join(platforms)} trials, relation therapy or follow-up, one count per trial, "
        f"registered up to {args.as_of}, groups China (incl. Taiwan, Hong Kong, Macao) / United States / other.",
        f"Registration dates: {notes.get('date_sources')}; "
        f"version that status and phase are read from (phase from a later version where none was current on "
        f"the date): {notes.get('as_of_sources')}.",
        "",
        f"Of {len(ref)} published numbers, {compared} can be computed from this database; "
        f"{agree} agree exactly and {close} are within 15%.",
        "",
        "| metric | review | cartatlas | difference | why |",
        "|---|---:|---:|---:|---|",
        *rows,
        "",
        "## Why the numbers differ (on the sample corpus)",
        "",
        "- **The sample is not the 2020 registry.** `../shared/data/ctgov/reconstructed/` holds the 2,587 trials "
        "that two CAR-T dashboards kept on 2026-08-22, rebuilt from their flattened CSVs. Trials the dashboards "
        "dropped (withdrawn, out of their scope, or screened out by their rules) are missing, and nothing else of "
        "ClinicalTrials.gov is there, so every count here is a lower bound of a registry-wide count.",
        "- **No registration dates.** The reconstructed records lack first-submitted and first-posted dates. cartatlas "
        "takes a first-posted date from any other stored version of the same record (e.g. the 2018 website CSV; "
        "`other_version`) where one exists, and otherwise estimates it from the NCT number, calibrated on the "
        "records in the same database that have a date (on a random tenth of the dated sample records held out: "
        "median error 1 day, 90th percentile 22 days; beyond the newest dated number, see `docs/schema.md`); every "
        "estimate is marked and never later than the record's own last update.",
        "- **2026 records, 2020 questions.** Phase comes from the stored version current on the as-of date; the "
        "sample mostly holds one 2026 version per trial, so for the trials without one the phase of the later "
        f"version is counted (a registered phase rarely changes: {phase_changed} of the {stored} trials with both "
        "versions stored changed category), and sites added after 2020 move a trial between groups. Status is not "
        "used here; the report counts a status no stored version shows on the date as not known.",
        "- **Screening by rules, not by hand.** The review's authors read every hit; cartatlas's rules are in "
        "`docs/accuracy.md`, and every counted trial's evidence is in the report.",
        "- **Targets.** A trial naming two antigens counts under both, as in the review; a trial whose antigen is "
        "not disclosed counts as `unknown` and is left out of the per-target figures.",
        "",
        "To reproduce on the real registry: `cartatlas sync ctgov` (full harvest, a few minutes at the default "
        "polite rate), `cartatlas sync pubmed` for Fig. 2 and Table 1 (see `docs/pubmed.md`), and an ICTRP "
        "export of ChiCTR (`cartatlas import`) for the ChiCTR numbers; then "
        "`python scripts/reproduce_wei2021.py --db cartatlas.duckdb`.",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {out}: {compared} numbers compared, {agree} equal, {close} within 15%")


if __name__ == "__main__":
    main()
