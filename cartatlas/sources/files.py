"""Reading any supported file by its content, not its name.

A path may be a file, a folder (read recursively, in name order), a gzip
file, or a zip archive whose members are read as files in their own right;
the bytes are then sniffed and handed to the first reader that claims them.
Readers register themselves with ``register_reader`` so that a new registry
plugs in without touching this module.
"""

from __future__ import annotations

import gzip
import io
import logging
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from cartatlas.model import RawRecord, Reject, Skipped

log = logging.getLogger(__name__)

Item = RawRecord | Reject | Skipped

#: What reading a damaged file can raise (zlib.error: a corrupt deflate stream inside gzip or zip).
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error)


class Input:
    """One logical file, read lazily so that large inputs stream.

    ``head`` gives the first bytes for sniffing; ``open`` gives a fresh binary
    stream over the whole (decompressed) content; ``read_all`` is for formats
    that cannot be parsed incrementally (a JSON array, an XML document).
    """

    def __init__(self, name: str, opener: Callable[[], IO[bytes]]) -> None:
        self.name = name
        self._opener = opener
        self._head: bytes | None = None

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> Input:
        return cls(name, lambda: io.BytesIO(data))

    def open(self) -> IO[bytes]:
        return self._opener()

    def head(self, n: int = 4096) -> bytes:
        if self._head is None or len(self._head) < n:
            with self.open() as fh:
                self._head = fh.read(max(n, 4096))
        return self._head[:n]

    def text_head(self, n: int = 4096) -> str:
        return self.head(n).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")

    def read_all(self) -> bytes:
        with self.open() as fh:
            return fh.read()


#: Lines per ``LineBatch``: one import batch (``cartatlas.store.ingest.BATCH_SIZE``) of one-record lines.
LINES_PER_BATCH = 2000
#: Decompressed bytes read at a time when cutting a file into line batches.
_BLOCK = 1 << 22


@dataclass(frozen=True, slots=True)
class LineBatch:
    """Consecutive lines of a line-oriented record file (JSON lines), read but not yet parsed.

    Parsing is most of the cost of an import, and bytes cross a process
    boundary far more cheaply than parsed objects: an importer hands whole
    batches to worker processes, which call ``items``.  ``parse`` must be a
    module-level function so that the batch pickles.
    """

    source: str
    #: Line number of the first line of ``data`` (1-based, as in reject locators).
    first_line: int
    #: Whole lines, each ended by b"\n" except perhaps the file's last.
    data: bytes
    n_lines: int
    #: (source, line number, line with its b"\n") -> the records and rejects in that line.
    parse: Callable[[str, int, bytes], Iterator[Item]]

    def items(self) -> Iterator[Item]:
        """The records and rejects of every line, in order, exactly as the streaming reader yields them."""
        data = self.data
        ended = data.endswith(b"\n")
        lines = data.split(b"\n")
        if ended:
            lines.pop()
        last = len(lines) - 1
        parse, source, first = self.parse, self.source, self.first_line
        for i, line in enumerate(lines):
            yield from parse(source, first + i, line + b"\n" if ended or i < last else line)


def line_batches(
    name: str, fh: IO[bytes], parse: Callable[[str, int, bytes], Iterator[Item]], size: int = LINES_PER_BATCH
) -> Iterator[LineBatch]:
    """Cut a binary stream into batches of ``size`` lines, reading large blocks (no Python call per line).

    If the stream breaks off (a damaged gzip member), the whole lines read so
    far are yielded before the error propagates, as a line-by-line reader would.
    """
    pending = b""
    newlines = 0  # in ``pending``, counted block by block rather than over the whole buffer again
    first = 1
    while True:
        try:
            block = fh.read(_BLOCK)
        except _READ_ERRORS:
            cut = pending.rfind(b"\n")
            if cut >= 0:
                yield LineBatch(name, first, pending[: cut + 1], newlines, parse)
            raise
        if block:
            pending = pending + block if pending else block
            newlines += block.count(b"\n")
        while newlines >= size:
            cut = -1
            for _ in range(size):
                cut = pending.index(b"\n", cut + 1)
            yield LineBatch(name, first, pending[: cut + 1], size, parse)
            pending = pending[cut + 1 :]
            newlines -= size
            first += size
        if not block:
            break
    if pending:
        yield LineBatch(name, first, pending, newlines + (not pending.endswith(b"\n")), parse)


#: A reader: (claims(input) -> bool, read(input) -> records and rejects).  ``read_batches``, when
#: a reader has it, yields the same records as ``LineBatch``es where the input allows (JSON lines).
@dataclass(frozen=True)
class Reader:
    name: str
    claims: Callable[[Input], bool]
    read: Callable[[Input], Iterator[Item]]
    read_batches: Callable[[Input], Iterator[Item | LineBatch]] | None = None


_READERS: list[Reader] = []


def register_reader(reader: Reader) -> None:
    _READERS.append(reader)


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
        yield Reject(inp.name, "", f"cannot read: {exc}")
        return
    if head[:2] == b"\x1f\x8b":
        gz = Input(inp.name, lambda: cast(IO[bytes], gzip.GzipFile(fileobj=inp.open(), mode="rb")))
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
                yield Reject(inp.name, "", f"file ends early or cannot be read further: {exc}")
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
