"""What every reader shares: the input it reads (``Input``), what it yields (``Item``, ``LineBatch``),
and the registry readers join (``Reader``, ``register_reader``).

Split from ``files`` (which finds the reader for a file and imports every built-in reader) so that a
reader imports this module, not the module that imports it.
"""

from __future__ import annotations

import io
import types
import zipfile
import zlib
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

from cartatlas.model import RawRecord, Reject, Skipped
from cartatlas.sources.limits import (
    DOCUMENT_LIMIT_ENV,
    TooLarge,
    describe_size,
    max_document_bytes,
    max_record_bytes,
    record_too_large,
)

_zlib: types.ModuleType = zlib
_GZIP_ERRORS: tuple[type[Exception], ...] = ()
try:  # ISA-L's inflate is about 3.4 times as fast as zlib's (docs/performance.md); same streams, same checks
    from isal import isal_zlib

    _zlib = isal_zlib
    _GZIP_ERRORS = (cast(type[Exception], isal_zlib.error),)
except ImportError:  # a platform without its wheels: zlib
    pass

Item = RawRecord | Reject | Skipped

#: What reading a damaged file can raise (zlib.error, or ISA-L's error: a corrupt deflate stream inside gzip
#: or zip).
_READ_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, zipfile.BadZipFile, zlib.error, *_GZIP_ERRORS)


class _Gunzip(io.RawIOBase):
    """The decompressed content of a gzip stream, every member in turn, CRC and length checked.

    ``gzip.GzipFile`` inflates with zlib; this reader inflates with ISA-L where
    it is installed.  (ISA-L's own ``IGzipFile`` was not used: on a file cut
    short its ``read1`` raised before returning the last part it had
    inflated, which loses records a cut file still holds, ``read_block``.)
    Everything inflated before a break is returned first; the break is raised
    by the read after it (``EOFError`` for a file cut short, the inflater's
    error for corrupt data).
    """

    _CHUNK = 1 << 18

    def __init__(self, fh: IO[bytes]) -> None:
        super().__init__()
        self._fh = fh
        self._inflater = _zlib.decompressobj(31)
        self._started = False  # a member has begun (an empty file is an empty stream)
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        while not self._pending and not self._done:
            chunk = self._fh.read(self._CHUNK)
            if not chunk:
                self._done = True
                if self._started and not self._inflater.eof:
                    raise EOFError("Compressed file ended before the end-of-stream marker was reached")
                break
            self._started = True
            out = [self._inflater.decompress(chunk)]
            while self._inflater.eof and self._inflater.unused_data:  # the next member
                rest = self._inflater.unused_data
                self._inflater = _zlib.decompressobj(31)
                out.append(self._inflater.decompress(rest))
            self._pending = b"".join(out)
        if size is None or size < 0 or size >= len(self._pending):
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all with -1): fewer only at the end of the stream."""
        want = None if size is None or size < 0 else size
        parts: list[bytes] = []
        n = 0
        while want is None or n < want:
            part = self.read1(-1 if want is None else want - n)
            if not part:
                break
            parts.append(part)
            n += len(part)
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        data = self.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._fh.close()
        super().close()


def gunzip(fh: IO[bytes]) -> IO[bytes]:
    """A reader of the decompressed content of a gzip stream (every member, as ``gzip`` reads them)."""
    return cast(IO[bytes], _Gunzip(fh))


class Input:
    """One logical file, read lazily so that large inputs stream.

    ``head`` gives the first bytes for sniffing; ``open`` gives a fresh binary
    stream over the whole (decompressed) content; ``read_all`` is for formats
    that cannot be parsed incrementally (a JSON array, an XML document), and
    stops past ``max_document_bytes()`` so that a small archive that unpacks
    to gigabytes cannot take the memory with it.
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
        """The first ``n`` bytes, or as many as can be read: a stream cut short still shows its start."""
        if self._head is None or len(self._head) < n:
            with self.open() as fh:
                data, error = read_block(fh, max(n, 4096))
            if error is not None and not data:
                raise error
            self._head = data
        return self._head[:n]

    def text_head(self, n: int = 4096) -> str:
        return self.head(n).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")

    def read_all(self) -> bytes:
        """The whole content, or ``TooLarge`` one byte past the document limit (read no further)."""
        limit = max_document_bytes()
        parts: list[bytes] = []
        n = 0
        with self.open() as fh:
            # In blocks, joined only once the whole is known to fit: an oversized input costs the
            # limit in memory, not twice the limit (``read(limit + 1)`` joins what it has read).
            while block := fh.read(min(_BLOCK, limit + 1 - n)):
                parts.append(block)
                n += len(block)
                if n > limit:
                    raise TooLarge(
                        f"larger than {describe_size(limit)}, the limit for a document read whole "
                        f"(${DOCUMENT_LIMIT_ENV} raises it; JSON lines are streamed and have no such limit)"
                    )
        return b"".join(parts) if len(parts) != 1 else parts[0]


#: Lines per ``LineBatch``: one import batch (``cartatlas.pipeline.ingest.BATCH_SIZE``) of one-record lines.
LINES_PER_BATCH = 2000
#: Bytes at which a ``LineBatch`` ends even if it has fewer lines (see ``line_batches``).
BATCH_BYTES = 16 << 20
#: Decompressed bytes read at a time when cutting a file into line batches.
_BLOCK = 1 << 22


def read_block(fh: IO[bytes], size: int) -> tuple[bytes, BaseException | None]:
    """Up to ``size`` bytes, and the read error that ended them early if any.

    A stream that breaks off (a gzip file cut short) raises on the read that
    reaches the break, and ``read(size)`` then loses everything it had
    decompressed in that call.  ``read1`` returns what one underlying read
    gives, so the bytes before the break are kept and returned with the error.
    """
    read1 = getattr(fh, "read1", None)
    if read1 is None:
        try:
            return fh.read(size), None
        except _READ_ERRORS as exc:
            return b"", exc
    parts: list[bytes] = []
    n = 0
    while n < size:
        try:
            chunk = read1(size - n)
        except _READ_ERRORS as exc:
            return b"".join(parts), exc
        if not chunk:
            break
        parts.append(chunk)
        n += len(chunk)
    return (parts[0] if len(parts) == 1 else b"".join(parts)), None


def stream_break(exc: BaseException) -> str:
    """What a read error says about the file, in a curator's words."""
    text = str(exc)
    if isinstance(exc, EOFError):
        kind = "truncated gzip stream" if "end-of-stream marker" in text else "truncated compressed stream"
        return f"{kind} ({text})" if text else kind
    if isinstance(exc, (zlib.error, *_GZIP_ERRORS)):
        return f"corrupt compressed data ({text})"
    if isinstance(exc, zipfile.BadZipFile):
        return f"damaged zip member ({text})"
    return f"read error ({text or type(exc).__name__})"


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
    #: A line longer than this is a reject, not parsed (``max_record_bytes()`` when the batch was cut).
    max_line: int = 1 << 62

    #: Cut by a batch limit (lines or bytes), not the end of the file: an import batch of its own.
    full: bool = False

    def lines(self) -> list[bytes]:
        """The lines, each as ``parse`` receives it (with its b"\\n", but perhaps the file's last)."""
        lines = self.data.split(b"\n")
        if self.data.endswith(b"\n"):
            lines.pop()
            return [line + b"\n" for line in lines]
        return [line + b"\n" for line in lines[:-1]] + lines[-1:]

    def items(self, skip: Container[int] = ()) -> Iterator[Item]:
        """The records and rejects of every line, in order, exactly as the streaming reader yields them.

        ``skip`` holds indexes of lines to leave out (lines an import knows it stored before).
        """
        parse, source, first, limit = self.parse, self.source, self.first_line, self.max_line
        for i, line in enumerate(self.lines()):
            if i in skip:
                continue
            size = len(line) - line.endswith(b"\n")
            if size > limit:
                yield Reject(source, f"line {first + i}", record_too_large(size, limit))
                continue
            yield from parse(source, first + i, line)


def line_batches(
    name: str,
    fh: IO[bytes],
    parse: Callable[[str, int, bytes], Iterator[Item]],
    size: int = LINES_PER_BATCH,
    *,
    max_line: int | None = None,
    batch_bytes: int = BATCH_BYTES,
) -> Iterator[LineBatch | Reject]:
    """Cut a binary stream into batches of ``size`` lines, reading large blocks (no Python call per line).

    A batch also ends before it passes ``batch_bytes``: the memory an import
    worker needs for a batch grows with its bytes, and full registry records
    are long (a batch of 2,000 API v2 studies with results is over 50 MB).

    Bad input costs only itself.  A line longer than ``max_line`` (default
    ``max_record_bytes()``) is dropped as it is read, never held whole, and
    becomes a reject naming its line.  If the stream breaks off (a gzip file
    cut short), every whole line before the break is yielded, then a reject
    naming the line where the file ends.
    """
    limit = max_record_bytes() if max_line is None else max_line
    pending = b""
    newlines = 0  # in ``pending``, counted block by block rather than over the whole buffer again
    first = 1
    dropped = -1  # bytes of an over-long line dropped so far; -1 when not inside one
    while True:
        block, error = read_block(fh, _BLOCK)
        at_end = not block
        if dropped >= 0 and block:
            end = block.find(b"\n")
            if end < 0:
                dropped += len(block)
                block = b""
            else:
                yield Reject(name, f"line {first}", record_too_large(dropped + end, limit))
                first += 1
                dropped = -1
                block = block[end + 1 :]
        if block:
            pending = pending + block if pending else block
            newlines += block.count(b"\n")
        while newlines and (newlines >= size or len(pending) >= batch_bytes):
            # ``size`` lines, or fewer when they would pass ``batch_bytes`` (but at least one line).
            cut, n = -1, 0
            while n < size:
                end = pending.find(b"\n", cut + 1)
                if end < 0 or (n and end >= batch_bytes):
                    break
                cut, n = end, n + 1
            yield LineBatch(name, first, pending[: cut + 1], n, parse, limit, full=True)
            pending = pending[cut + 1 :]
            newlines -= n
            first += n
        if dropped < 0 and len(pending) > limit:
            start = pending.rfind(b"\n") + 1  # of the unfinished last line
            if len(pending) - start > limit:
                if start:
                    yield LineBatch(name, first, pending[:start], newlines, parse, limit)
                    first += newlines
                dropped = len(pending) - start
                pending = b""
                newlines = 0
        if error is not None:
            yield from _broken_off(name, first, pending, newlines, dropped, parse, limit, error)
            return
        if at_end:
            break
    if dropped >= 0:
        yield Reject(name, f"line {first}", record_too_large(dropped, limit))
    elif pending:
        yield LineBatch(name, first, pending, newlines + (not pending.endswith(b"\n")), parse, limit)


def _broken_off(
    name: str,
    first: int,
    pending: bytes,
    newlines: int,
    dropped: int,
    parse: Callable[[str, int, bytes], Iterator[Item]],
    limit: int,
    error: BaseException,
) -> Iterator[LineBatch | Reject]:
    """The whole lines read before a stream broke off, then a reject naming the line where it ends."""
    cut = pending.rfind(b"\n") + 1
    if cut:
        yield LineBatch(name, first, pending[:cut], newlines, parse, limit)
        first += newlines
    partial = len(pending) - cut if dropped < 0 else dropped
    where = "mid-record" if partial else f"after line {first - 1}" if first > 1 else "before its first line"
    yield Reject(name, f"line {first}", f"file ends {where}: {stream_break(error)}")


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
