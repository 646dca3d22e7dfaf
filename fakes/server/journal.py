"""The attempt journal: every attempt that reached a fake, as the provider saw it.

SDKs retry internally and routers fail over, so what a client reports is not what the
providers received. The journal is the provider's side of the story — deployment,
model, when, how big, which fault was applied and how it ended — readable through the
control API and written as JSON lines, which a live run keeps as the provider view of
its trace. Prompts and keys are never recorded; sizes are.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["Journal", "JournalEntry"]


@dataclass(slots=True)
class JournalEntry:
    """One attempt at a fake. `outcome` uses the outcome vocabulary of DESIGN.md
    (`ok`, `timeout`, `connect`, `server`, `rate_limited`, `stream_cut`, …); `fault`
    is the injected fault's kind and `source` where it came from (`directive`,
    `rule:<id>`, `scenario`), both None for an undisturbed answer."""

    seq: int
    at_ms: int
    host: str
    deployment: str | None
    model: str
    protocol: str
    stream: bool
    input_tokens: int
    fault: str | None = None
    source: str | None = None
    outcome: str | None = None
    http_status: int | None = None
    output_tokens: int = 0
    duration_ms: int | None = None


class Journal:
    """Bounded in memory (the newest `keep` entries) and complete in the optional file."""

    def __init__(self, path: str | Path | None = None, *, keep: int = 100_000) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=keep)
        self._seq = 0
        self._file: IO[str] | None = None
        if path is not None:
            self._file = Path(path).open("a", encoding="utf-8")  # noqa: SIM115 (closed by close())

    def open(
        self, *, host: str, deployment: str | None, model: str, protocol: str, stream: bool,
        input_tokens: int,
    ) -> JournalEntry:  # fmt: skip
        """Start an entry when an attempt arrives; `finish` it when the attempt ends."""
        self._seq += 1
        entry = JournalEntry(
            seq=self._seq,
            at_ms=int(time.time() * 1000),
            host=host,
            deployment=deployment,
            model=model,
            protocol=protocol,
            stream=stream,
            input_tokens=input_tokens,
        )
        self._entries.append(entry)
        return entry

    def finish(
        self, entry: JournalEntry, *, outcome: str, http_status: int | None, output_tokens: int = 0
    ) -> None:
        """Record how the attempt ended and write it to the file."""
        entry.outcome = outcome
        entry.http_status = http_status
        entry.output_tokens = output_tokens
        entry.duration_ms = int(time.time() * 1000) - entry.at_ms
        if self._file is not None:
            self._file.write(json.dumps(asdict(entry)) + "\n")
            self._file.flush()

    def entries(self, *, since: int = 0) -> list[dict[str, Any]]:
        """Entries with `seq` greater than `since`, oldest first."""
        return [asdict(entry) for entry in self._entries if entry.seq > since]

    def clear(self) -> None:
        """Forget the in-memory entries (the file keeps them)."""
        self._entries.clear()

    def close(self) -> None:
        """Flush and close the JSON-lines file."""
        if self._file is not None:
            self._file.close()
            self._file = None
