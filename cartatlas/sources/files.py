"""Reading any supported file by its content, not its name.

A path may be a file, a folder (read recursively, in name order), a gzip
file, or a zip archive whose members are read as files in their own right;
the bytes are then sniffed and handed to the first reader that claims them.
Readers register themselves with ``register_reader`` so that a new registry
plugs in without touching this module.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from cartatlas.model import Reject, Skipped
from cartatlas.sources.base import _READ_ERRORS, _READERS, Input, Item, LineBatch, Reader, gunzip, stream_break
from cartatlas.sources.limits import TooLarge

log = logging.getLogger(__name__)


def readers() -> list[Reader]:
    _load_builtin_readers()
    return list(_READERS)


_loaded = False


def _load_builtin_readers() -> None:
    """Import reader modules once; each registers itself on import."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from cartatlas.sources import (
        chictr,  # noqa: F401  (ChiCTR's WHO XML and saved web pages)
        ctgov,  # noqa: F401
        ictrp,  # noqa: F401  (WHO ICTRP XML and CSV exports)
        pubmed,  # noqa: F401
    )


def iter_paths(paths: list[Path]) -> Iterator[tuple[Path, bool]]:
    """(file, named explicitly) under the given paths, folders expanded recursively in sorted order.

    A file found inside a folder that turns out to hold no records is skipped
    with a note; a file the user named is expected to hold records.
    """
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not child.name.startswith("."):
                    yield child, False
        else:
            yield path, True


def read_path(path: Path, *, strict: bool = True) -> Iterator[Item]:
    """Records of one file; an unreadable file becomes a single Reject."""
    return cast(Iterator[Item], _read_path(path, strict, batches=False))


def read_path_batches(path: Path, *, strict: bool = True) -> Iterator[Item | LineBatch]:
    """Like ``read_path``, but JSON-lines content comes as unparsed ``LineBatch``es (for the importer)."""
    return _read_path(path, strict, batches=True)


def _read_path(path: Path, strict: bool, *, batches: bool) -> Iterator[Item | LineBatch]:
    if not path.exists():
        yield Reject(str(path), "", "no such file")
        return
    opener = lambda: open(path, "rb")  # noqa: E731, SIM115  (Input closes what it opens)
    yield from _read_input(Input(str(path), opener), strict, batches=batches)


def read_input(inp: Input, *, strict: bool = True) -> Iterator[Item]:
    """Unwrap compression and archives, then dispatch by content."""
    return cast(Iterator[Item], _read_input(inp, strict, batches=False))


def _read_input(inp: Input, strict: bool, *, batches: bool) -> Iterator[Item | LineBatch]:
    try:
        head = inp.head(8)
    except _READ_ERRORS as exc:
        yield Reject(inp.name, "", f"cannot read: {stream_break(exc)}")
        return
    if head[:2] == b"\x1f\x8b":
        gz = Input(inp.name, lambda: gunzip(inp.open()))
        yield from _read_input(gz, strict, batches=batches)
        return
    if head[:4] == b"PK\x03\x04":
        yield from _read_zip(inp, batches=batches)
        return
    for reader in readers():
        try:
            claimed = reader.claims(inp)
        except Exception:  # a sniffer must never stop the import
            claimed = False
        if claimed:
            log.debug("%s: read as %s", inp.name, reader.name)
            try:
                if batches and reader.read_batches is not None:
                    yield from reader.read_batches(inp)
                else:
                    yield from reader.read(inp)
            except _READ_ERRORS as exc:
                # e.g. a gzip stream cut short: the records before it were yielded already.
                yield Reject(inp.name, "", f"file ends early or cannot be read further: {stream_break(exc)}")
            except TooLarge as exc:
                yield Reject(inp.name, "", str(exc))
            return
    try:
        text = inp.text_head(60).replace("\n", " ")
    except _READ_ERRORS as exc:
        yield Reject(inp.name, "", f"cannot read: {exc}")
        return
    if strict:
        yield Reject(inp.name, "", f"unrecognised format (starts with {text!r})")
    else:
        yield Skipped(inp.name, f"not a record file (starts with {text!r})")


def _read_zip(inp: Input, *, batches: bool) -> Iterator[Item | LineBatch]:
    try:
        archive = zipfile.ZipFile(inp.open())
        members = [m for m in archive.infolist() if not m.is_dir()]
    except _READ_ERRORS as exc:
        yield Reject(inp.name, "", f"broken zip archive: {exc}")
        return
    for member in sorted(members, key=lambda m: m.filename):
        # Members of an archive are like files in a folder: a stray README is skipped.
        yield from _read_input(
            Input(f"{inp.name}!{member.filename}", lambda m=member: archive.open(m)),  # type: ignore[misc]
            False,
            batches=batches,
        )


def read_paths(paths: list[Path]) -> Iterator[Item]:
    for path, explicit in iter_paths(paths):
        yield from read_path(path, strict=explicit)
