"""The bulk route to the whole of ClinicalTrials.gov: download the registry's zip export, then import it.

``harvest_bulk`` downloads the export (``cartatlas.sources.ctgov.bulk``: whole
and verified, or nothing), then stores its studies through the importer that
reads any zip (``save_records``: versions by content hash, normalised rows,
rejects naming the member), so a study from the archive is the same version
as the same study from an API page.  Each record's source is the export's URL
and its member (``...?format=json.zip!35/NCT02252835.json``), with source kind
``bulk``, not the temporary file it was read from.

A completed import also completes a pass of every study (``ALL_STUDIES``) in
``sync_state``, begun when the download began: ``cartatlas sync ctgov --all``
then asks only for what was updated since, like after a paged pass.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cartatlas.model import ImportStats, RawRecord, Reject
from cartatlas.pipeline.ingest import save_records
from cartatlas.sources.base import Input, Item, LineBatch
from cartatlas.sources.ctgov import bulk
from cartatlas.sources.ctgov.api import ALL_STUDIES, REGISTRY
from cartatlas.sources.files import read_input
from cartatlas.sources.limits import max_document_bytes
from cartatlas.store import sync_state
from cartatlas.store.db import Store

#: The archive's name as the registry gives it.
ARCHIVE_NAME = "ctg-studies.json.zip"


def harvest_bulk(
    store: Store,
    run_id: str,
    url: str,
    *,
    keep: Path | None = None,
    workdir: Path | None = None,
    on_download: Callable[[int, int | None], None] | None = None,
    on_downloaded: Callable[[bulk.Download], None] | None = None,
    on_batch: Callable[[ImportStats], None] | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    **download_options: Any,
) -> ImportStats:
    """Download the export from ``url``, import it, and complete a pass of every study.

    ``keep`` is where the archive stays afterwards (else it goes to a
    temporary folder in ``workdir``, by default the system's, and is deleted
    after the import).  ``download_options`` go to ``bulk.download``.
    """
    if keep is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        return _download_and_import(
            store, run_id, url, keep, on_download, on_downloaded, on_batch, clock, download_options
        )
    with tempfile.TemporaryDirectory(prefix="cartatlas-bulk-", dir=workdir) as tmp:
        return _download_and_import(
            store, run_id, url, Path(tmp) / ARCHIVE_NAME, on_download, on_downloaded, on_batch, clock, download_options
        )


def _download_and_import(
    store: Store,
    run_id: str,
    url: str,
    dest: Path,
    on_download: Callable[[int, int | None], None] | None,
    on_downloaded: Callable[[bulk.Download], None] | None,
    on_batch: Callable[[ImportStats], None] | None,
    clock: Callable[[], dt.datetime],
    download_options: dict[str, Any],
) -> ImportStats:
    got = bulk.download(url, dest, on_bytes=on_download, wall_clock=clock, **download_options)
    if on_downloaded is not None:
        on_downloaded(got)
    stats = save_records(store, as_bulk(read_export(got.path), str(got.path), url), run_id, on_batch=on_batch)
    previous = sync_state.load(store, REGISTRY, ALL_STUDIES)
    state = sync_state.begin_pass(store, REGISTRY, ALL_STUDIES, None, run_id, got.started_at, previous)
    sync_state.checkpoint(
        store, state, page_token=None, pages_done=0, records_done=stats.seen, total=got.members, at=clock()
    )
    sync_state.finish_pass(store, state, clock())
    return stats


def read_export(path: Path) -> Iterator[Item | LineBatch]:
    """The archive's records, each member decompressed once.

    The generic zip reader (``read_path_batches``) opens a member again for
    each look at it (its start, the JSON-lines test, the whole), which for
    560,000 small members costs as much as the rest of the import.  Here a
    member is read once into memory and handed to the same readers
    (``read_input``), so every member is read exactly as an import of the zip
    would read it; a member larger than the document limit goes to them as a
    stream instead, and one that cannot be decompressed is a reject naming it.
    """
    name = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        yield Reject(name, "", f"broken zip archive: {exc}")
        return
    with archive:
        limit = max_document_bytes()
        members = sorted((m for m in archive.infolist() if not m.is_dir()), key=lambda m: m.filename)
        for member in members:
            where = f"{name}!{member.filename}"
            if member.file_size > limit:
                yield from read_input(Input(where, lambda m=member: archive.open(m)), strict=False)  # type: ignore[misc]
                continue
            try:
                data = archive.read(member)
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                yield Reject(where, "", f"cannot read this member of the archive: {exc}")
                continue
            yield from read_input(Input.from_bytes(where, data), strict=False)


def as_bulk(items: Iterator[Item | LineBatch], local: str, url: str) -> Iterator[Item | LineBatch]:
    """The archive's records and rejects, named by the export's URL instead of the local file read."""
    for item in items:
        if isinstance(item, RawRecord):
            item.source = _named(item.source, local, url)
            item.source_kind = "bulk"
        elif isinstance(item, Reject):
            item.source = _named(item.source, local, url)
        yield item


def _named(source: str, local: str, url: str) -> str:
    return url + source[len(local) :] if source.startswith(local) else source
