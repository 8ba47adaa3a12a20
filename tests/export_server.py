"""The registry's bulk export on the local replay server: ``/api/v2/studies/download?format=json.zip``.

ClinicalTrials.gov offers every study as one zip, ``ctg-studies.json.zip``, a
JSON file per study named by its NCT id in a folder of its last two digits
(``35/NCT02252835.json``; ``docs/formats.md``).  ``ExportServer`` serves the
same REAL studies as ``ReplayServer``'s pages in that layout, so that the
paged and the bulk routes can be compared record for record; its faults are
``http_faults``' (a 429, a reset mid-body, a body cut short).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from typing import Any

import orjson
from http_faults import Reply, Request
from replay_server import ReplayServer


def export_zip(studies: dict[str, dict[str, Any]]) -> bytes:
    """The registry's export layout: ``NN/NCTxxxxxxNN.json``, one study per file, NN the id's last two digits."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, study in studies.items():
            archive.writestr(f"{key[-2:]}/{key}.json", orjson.dumps(study, option=orjson.OPT_INDENT_2))
    return buffer.getvalue()


@dataclass
class ExportServer(ReplayServer):
    """The replay server, plus the export of everything it serves at ``/api/v2/studies/download``."""

    _archive: bytes | None = None
    #: Serve byte ranges of the archive (``Accept-Ranges``, a strong ``ETag``, ``If-Range``), as a CDN does.
    ranges: bool = True

    def route(self, request: Request) -> Reply:
        if request.path != "/api/v2/studies/download":
            return super().route(request)
        if request.params.get("format") != "json.zip":
            return Reply(400, b"format: only json.zip is accepted", "text/plain")
        with self._lock:
            if self._archive is None:
                self._archive = export_zip({key: self._by_id[key] for key in self._order})
            body = self._archive
        headers = {"Content-Disposition": "attachment; filename=ctg-studies.json.zip"}
        if not self.ranges:
            return Reply(200, body, "application/zip", headers)
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        headers |= {"Accept-Ranges": "bytes", "ETag": etag}
        wanted = request.headers.get("range", "")
        if wanted.startswith("bytes=") and wanted.endswith("-") and request.headers.get("if-range") == etag:
            start = int(wanted[6:-1])
            if start >= len(body):
                return Reply(416, b"range not satisfiable", "text/plain", {"Content-Range": f"bytes */{len(body)}"})
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            return Reply(206, body[start:], "application/zip", headers)
        return Reply(200, body, "application/zip", headers)

    def export_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/api/v2/studies/download"]
