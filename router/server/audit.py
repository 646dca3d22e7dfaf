"""The audit log: every attempt and request row of the trace, as JSON lines, live.

The engine records attempt and request rows in a `TraceRecorder` (no I/O in the
core). This module drains that recorder into a file once a `flush_s` tick (one
second by default) and once more at shutdown, after the driver has stopped, so the
rows of attempts cancelled by the stop are kept too. Draining in batches keeps the
hot path to appends in memory; memory stays bounded to one tick of rows.

Each line is one row of DESIGN.md's trace schema plus `"kind": "attempt"` or
`"kind": "request"`; `reports.audit_log.read_audit_log` loads a file back into the
two DataFrames the simulator writes, so a live run feeds `reports/` directly. The
rows carry no prompt, answer or key (tenant names, routes, deployments, outcomes,
tokens and costs only), so neither can reach the log. With `PromptFingerprints`, a
request line also carries `prompt_hmac`, the keyed fingerprint of the client's body
(`router.server.fingerprints`), which ties it to the client's own record of the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import IO

import orjson
from aiohttp import web

from router.core.trace import (
    ATTEMPT_COLUMNS,
    REQUEST_COLUMNS,
    AttemptRow,
    RequestRow,
    TraceRecorder,
)
from router.server.fingerprints import PromptFingerprints

__all__ = ["DEFAULT_FLUSH_S", "AuditLog"]

DEFAULT_FLUSH_S = 1.0
"""Longest a row waits in memory before it is written and flushed."""

_log = logging.getLogger(__name__)


def _append_lines(
    out: bytearray,
    kind: str,
    columns: tuple[str, ...],
    rows: list[AttemptRow] | list[RequestRow],
    fingerprints: list[str | None] | None = None,
) -> None:
    """Each row as one JSON line, `kind` first, appended to `out` (with `prompt_hmac`
    last where `fingerprints`, one per row, are given).

    Appending each encoding and dropping it at once is about three times faster than
    keeping a second's worth of encodings to join them: the memory of one is reused
    for the next. Each row is one dict, filled in place (the flush runs every second).
    """
    for index, row in enumerate(rows):
        document: dict[str, object] = {"kind": kind}
        document.update(zip(columns, row, strict=True))
        if fingerprints is not None:
            document["prompt_hmac"] = fingerprints[index]
        out += orjson.dumps(document)
        out += b"\n"


class AuditLog:
    """Writes the rows `trace` collects to `path` (appending), at most `flush_s` late.

    `attach(app)` ties it to an app's life: the file opens and the flusher starts with
    the app; the last rows are written when the app cleans up, after its driver stopped.
    """

    def __init__(
        self,
        path: Path,
        trace: TraceRecorder,
        *,
        flush_s: float = DEFAULT_FLUSH_S,
        fingerprints: PromptFingerprints | None = None,
    ) -> None:
        if not flush_s > 0:
            raise ValueError(f"flush_s must be > 0, got {flush_s}")
        self.path = path
        self.trace = trace
        self.flush_s = flush_s
        self.fingerprints = fingerprints
        self.rows_written = 0
        self._file: IO[bytes] | None = None
        self._task: asyncio.Task[None] | None = None

    def open(self) -> None:
        """Open the file for appending (a restart adds to the same log)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab")

    def flush(self) -> int:
        """Write every row collected since the last flush; returns how many."""
        if self._file is None:
            return 0
        # The loop is single-threaded: nothing is recorded while the rows are drained.
        attempts, requests = self.trace.drain()
        count_a, count_r = len(attempts), len(requests)
        if not count_a and not count_r:
            return 0
        data = bytearray()
        fingerprints = self.fingerprints
        ids = [row.request_id for row in requests]
        prompts = None if fingerprints is None else fingerprints.lookup(ids)
        _append_lines(data, "attempt", ATTEMPT_COLUMNS, attempts)
        _append_lines(data, "request", REQUEST_COLUMNS, requests, prompts)
        try:
            self._file.write(data)
            self._file.flush()
        except (OSError, ValueError):
            # Nothing is recorded between drain and here (one loop), so putting the rows
            # back keeps their order: the next flush writes them. Nothing lost.
            for attempt in attempts:
                self.trace.add_attempt(attempt)
            for request in requests:
                self.trace.add_request(request)
            raise
        if fingerprints is not None:
            fingerprints.forget(ids)  # only now: rows put back above keep theirs
        self.rows_written += count_a + count_r
        return count_a + count_r

    def close(self) -> None:
        """Write what is left and close the file."""
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            try:
                self.flush()
            except (OSError, ValueError):  # a full disk must not take the gateway down
                _log.exception("audit log %s: write failed; rows kept for the next try", self.path)

    def attach(self, app: web.Application) -> None:
        """Open with `app` and flush every tick; close after the app's own cleanup.

        `on_cleanup` handlers run after `cleanup_ctx` exits (aiohttp appends the context
        first), so the final flush sees the rows of the driver's stop.
        """

        async def start(app: web.Application) -> None:
            self.open()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-log")

        async def stop(app: web.Application) -> None:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                self._task = None
            self.close()

        app.on_startup.append(start)
        app.on_cleanup.append(stop)
