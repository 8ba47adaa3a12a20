"""The report's supplementary table of counted trials, read by both the files (``build``) and the page (``html``).

Kept apart from ``build`` so that ``html`` does not import the module that imports it (moved unchanged).
"""

from __future__ import annotations

import pandas as pd

from cartatlas.analysis.landscape import Landscape
from cartatlas.knowledge import labels

TRIAL_COLUMNS = [
    "unit_id", "registrations", "brief_title", "lead_sponsor", "sponsor_type", "registration_date",
    "registration_date_source", "status_as_of", "status_latest", "as_of_source", "phase_category", "as_of_version",
    "groups", "country_codes", "focus_regions",
    *(label.name for label in labels.LABELS if label.in_trial_table),  # knowledge/labels.py
    "curated_fields",
]  # fmt: skip


def trial_table(landscape: Landscape) -> pd.DataFrame:
    """The supplementary table: every counted trial with its labels."""
    units = landscape.units
    cols = [c for c in TRIAL_COLUMNS if c in units.columns]
    return units[cols].sort_values(["registration_date", "unit_id"], ignore_index=True)
