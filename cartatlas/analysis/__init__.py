"""Counting the landscape: registration dates, country groups, as-of views and traceable counts.

Everything here reads the database and returns DataFrames; nothing writes to
it, so analysis never changes what it analyses.
"""
