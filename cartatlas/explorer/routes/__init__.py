"""The explorer's pages, one module per concept: landscape, search, table, trial, curate, review, changes, geo."""
