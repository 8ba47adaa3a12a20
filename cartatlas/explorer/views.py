"""Saved views: a name for a view's URL state, with its own page and feeds.

Kept in the database's ``settings`` table (key ``explorer.views``, a JSON
list), so they travel with the database and need no schema change.  A view
stores only its query string; opening it parses that again, so a saved view
always means what the same URL would.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from cartatlas.api import Atlas

SETTINGS_KEY = "explorer.views"


@dataclass(frozen=True)
class SavedView:
    slug: str
    name: str
    query: str
    saved_by: str
    saved_at: str


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.casefold()).strip("-")
    return slug[:60] or "view"


def load(atlas: Atlas) -> list[SavedView]:
    row = atlas.store.con.execute("SELECT value FROM settings WHERE key = ?", [SETTINGS_KEY]).fetchone()
    if not row or not row[0]:
        return []
    items: list[dict[str, Any]] = orjson.loads(row[0])
    return [SavedView(**item) for item in items]


def find(atlas: Atlas, slug: str) -> SavedView | None:
    return next((v for v in load(atlas) if v.slug == slug), None)


def save(atlas: Atlas, name: str, query: str, saved_by: str) -> SavedView:
    """Add a view (a name already used gets a numbered slug) and return it."""
    name = name.strip()
    if not name:
        raise ValueError("a saved view needs a name")
    if len(name) > 200 or len(query) > 4000:
        raise ValueError("the view's name or query is too long")
    views = load(atlas)
    base = slugify(name)
    taken = {v.slug for v in views}
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    view = SavedView(slug, name, query, saved_by.strip(), dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    _store(atlas, [*views, view])
    return view


def delete(atlas: Atlas, slug: str) -> bool:
    views = load(atlas)
    kept = [v for v in views if v.slug != slug]
    if len(kept) == len(views):
        return False
    _store(atlas, kept)
    return True


def _store(atlas: Atlas, views: list[SavedView]) -> None:
    atlas.store.con.execute(
        "INSERT OR REPLACE INTO settings VALUES (?, ?)",
        [SETTINGS_KEY, orjson.dumps([asdict(v) for v in views]).decode()],
    )
