"""What the explorer keeps between requests: the database, one reader per thread, and caches.

Requests run on a pool of threads.  Each thread reads through its own DuckDB
cursor (an ``Atlas`` over it), so pages are served in parallel; writes (a
curator's action, a saved view) go through the main connection one at a
time.  While the explorer holds the database, DuckDB's file lock keeps every
other process from writing it, so the data can only change through the
explorer's own writes: the data version is read at start and after each
write, and every cache is keyed by it.

Expensive results are computed once per key even when several requests ask
at the same moment (the others wait for the first), and kept in small LRU
caches: the counted trials per counting options (seconds at 100,000 trials),
the filtered landscapes, facet counts and the search index.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import cartatlas
from cartatlas.analysis.filters import CountedTrials, TrialFilter
from cartatlas.analysis.landscape import Landscape
from cartatlas.api import Atlas
from cartatlas.search import SearchIndex
from cartatlas.store.db import Store

log = logging.getLogger(__name__)

T = TypeVar("T")


class Memo(Generic[T]):
    """An LRU cache whose misses are computed once: concurrent askers of one key wait for the first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._done: OrderedDict[Hashable, T] = OrderedDict()
        self._running: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        while True:
            with self._lock:
                if key in self._done:
                    self._done.move_to_end(key)
                    return self._done[key]
                event = self._running.get(key)
                if event is None:
                    event = self._running[key] = threading.Event()
                    break
            event.wait()  # another thread computes it; if that fails, the loop tries again here
        try:
            value = compute()
        except BaseException:
            with self._lock:
                del self._running[key]
            event.set()
            raise
        with self._lock:
            self._done[key] = value
            while len(self._done) > self.size:
                self._done.popitem(last=False)
            del self._running[key]
        event.set()
        return value

    def peek(self, key: Hashable) -> T | None:
        with self._lock:
            return self._done.get(key)

    def clear(self) -> None:
        with self._lock:
            self._done.clear()


@dataclass(frozen=True)
class Counting:
    """How trials are counted (the report's options): the key of one ``CountedTrials``."""

    as_of: dt.date | None = None
    focus: str = "CN"
    per: str = "trial"
    registries: tuple[str, ...] = ()
    relations: tuple[str, ...] = ("follow_up", "therapy")

    def effective_as_of(self) -> dt.date:
        return self.as_of or dt.date.today()


@dataclass(frozen=True)
class Settings:
    """How the explorer was started."""

    db: Path
    host: str = "127.0.0.1"
    port: int = 8765
    read_only: bool = False
    token: str | None = None

    @property
    def loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")


class Explorer:
    """The open database, its readers and caches; one per running app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.main: Atlas = cartatlas.open(settings.db, read_only=settings.read_only)
        self.write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[Atlas] = []
        self._readers_lock = threading.Lock()
        self.version = self.main.data_version()
        self.counted_cache: Memo[CountedTrials] = Memo(3)
        self.landscape_cache: Memo[Landscape] = Memo(48)
        self.facet_cache: Memo[dict[str, list[tuple[str, str, int]]]] = Memo(128)
        self.search_cache: Memo[SearchIndex] = Memo(1)
        self.misc_cache: Memo[Any] = Memo(256)
        self.page_cache: Memo[str] = Memo(128)

    # -- database access ---------------------------------------------------------------------

    def reader(self) -> Atlas:
        """This thread's read connection (a cursor of the main one: it sees every committed write)."""
        atlas: Atlas | None = getattr(self._local, "atlas", None)
        if atlas is None:
            store = Store(self.main.store.cursor(), self.main.store.path)
            atlas = Atlas(store)
            self._local.atlas = atlas
            with self._readers_lock:
                self._readers.append(atlas)
        return atlas

    def write(self, action: Callable[[Atlas], T]) -> T:
        """Run a write on the main connection, one at a time; caches move to the new data version."""
        if self.settings.read_only:
            raise PermissionError("the explorer was started with --read-only")
        with self.write_lock:
            try:
                return action(self.main)
            finally:
                version = self.main.data_version()
                if version != self.version:
                    self.version = version
                    # Everything cached belongs to the old version: let it go now rather than when evicted
                    # (counted trials of 100,000 trials hold hundreds of MB).
                    for cache in self.caches():
                        cache.clear()

    def caches(self) -> list[Memo[Any]]:
        return [self.counted_cache, self.landscape_cache, self.facet_cache, self.search_cache, self.misc_cache,
                self.page_cache]  # fmt: skip

    def close(self) -> None:
        with self._readers_lock:
            for atlas in self._readers:
                try:
                    atlas.store.con.close()
                except Exception:  # a cursor of a closed connection: nothing to release
                    log.debug("reader already closed")
            self._readers.clear()
        self.main.close()

    # -- cached results ----------------------------------------------------------------------

    def counted(self, counting: Counting) -> CountedTrials:
        key = (self.version, dt.date.today(), counting)

        def compute() -> CountedTrials:
            return self.reader().counted(
                counting.as_of,
                counting.focus,
                registries=list(counting.registries) or None,
                relations=counting.relations,
                per=counting.per,
            )

        return self.counted_cache.get(key, compute)

    def counted_if_ready(self, counting: Counting) -> CountedTrials | None:
        """The counted trials if already computed (a page that must stay fast does not start the count)."""
        return self.counted_cache.peek((self.version, dt.date.today(), counting))

    def landscape(self, counting: Counting, where: TrialFilter) -> Landscape:
        """The filtered landscape's tables and facts (its units are dropped: the counted trials hold them)."""
        key = (self.version, dt.date.today(), counting, where)

        def compute() -> Landscape:
            # This thread's own connection: a DuckDB connection serves one thread at a time.
            land = self.counted(counting).landscape(where, store=self.reader().store)
            return replace(land, units=land.units.iloc[:0])

        return self.landscape_cache.get(key, compute)

    def facets(self, counting: Counting, where: TrialFilter) -> dict[str, list[tuple[str, str, int]]]:
        key = (self.version, dt.date.today(), counting, where)
        return self.facet_cache.get(key, lambda: self.counted(counting).facets(where))

    def search_index(self) -> SearchIndex:
        return self.search_cache.get(self.version, lambda: self.reader().search_index())

    def cached(self, key: Hashable, compute: Callable[[], T]) -> T:
        """Any other result of the current data version."""
        return self.misc_cache.get((self.version, key), compute)

    def page(self, key: Hashable, render: Callable[[], str]) -> str:
        """A rendered page of the current data version (kept apart, so many trial pages cannot push it out)."""
        return self.page_cache.get((self.version, key), render)

    def warm(self) -> None:
        """Compute in the background what the first visitors need: default landscape, search index, review queue."""

        def run() -> None:
            try:
                counting = Counting()
                self.landscape(counting, TrialFilter())
                self.facets(counting, TrialFilter())
                self.search_index()
                self.cached("review-queue", lambda: self.reader().review(limit=None))
            except Exception:  # a failure shows on the page that needs it; warming is only a head start
                log.exception("warming the explorer's caches failed")

        threading.Thread(target=run, name="cartatlas-warm", daemon=True).start()
