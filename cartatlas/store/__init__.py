"""The embedded database: raw record versions (append-only) and the tables derived from them."""
