"""The report: figures, tables, summary.json and a self-contained HTML page, all from one Landscape."""
