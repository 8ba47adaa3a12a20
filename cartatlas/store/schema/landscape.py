"""Tables of the landscape analysis: ``registration_dates`` and the ``trial_landscape`` view (migration 6).

``registration_dates`` is derived (``cartatlas.analysis.registration``
rewrites it whenever the trials change); ``trial_landscape`` puts beside each
registration what a count "as of a date, per country group" needs, so that an
analyst's SQL gives the report's numbers: the cross-registry trial id, the
registration date with its source, the countries the trial is placed in (its
sites' countries, else its sponsor's, as the report does), and its provinces or
states and cities in one spelling.
"""

from __future__ import annotations

REGISTRATION_DATES_DDL = """
CREATE TABLE IF NOT EXISTS registration_dates (
    registry VARCHAR NOT NULL,
    trial_id VARCHAR NOT NULL,
    registration_date DATE,                 -- NULL only when nothing at all dates the record
    registration_date_source VARCHAR NOT NULL,
    registration_date_earliest DATE,        -- the interval the record's versions and NCT neighbours allow
    registration_date_latest DATE
)
"""

TRIAL_LANDSCAPE_VIEW = """
CREATE OR REPLACE VIEW trial_landscape AS
SELECT t.registry, t.trial_id, coalesce(k.cluster_id, t.trial_id) AS cluster_id,
       d.registration_date, d.registration_date_source, d.registration_date_earliest, d.registration_date_latest,
       CASE WHEN len(t.countries) > 0 THEN t.countries
            WHEN t.sponsor_country IS NOT NULL THEN [t.sponsor_country]
            ELSE CAST([] AS VARCHAR[]) END AS location_countries,
       CASE WHEN len(t.countries) > 0 THEN 'sites'
            WHEN t.sponsor_country IS NOT NULL THEN 'sponsor name'
            ELSE 'none' END AS location_source,
       list_sort(list_distinct([s.region_code FOR s IN t.sites])) AS region_codes,
       list_sort(list_distinct([s.region FOR s IN t.sites])) AS regions,
       list_sort(list_distinct([s.city_normalised FOR s IN t.sites])) AS cities,
       t.overall_status, t.phases, t.last_update_posted,
       c.relation, c.platforms, c.targets, c.branch
FROM trials t
LEFT JOIN trial_clusters k USING (registry, trial_id)
LEFT JOIN registration_dates d USING (registry, trial_id)
LEFT JOIN classifications c USING (registry, trial_id)
"""
