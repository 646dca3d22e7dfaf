"""Integrity of an evidence pack: `MANIFEST.sha256` and the hash chain between packs.

An auditor must be able to check a pack without trusting the tool: the manifest is in
`sha256sum` format (`sha256sum -c MANIFEST.sha256` re-checks it), `verify` names each
altered, missing or added file, and `CHAIN.json` links this pack's manifest hash to the
previous pack's, so a periodic series of tests is tamper-evident. The previous hash is
also written into `evidence.json`, which the manifest covers, so the link cannot be
edited in `CHAIN.json` alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

PACK_FORMAT = "blastradius-evidence/1"
"""`format` of evidence.json; bumped when a reader would misread a newer pack."""
CHAIN_FORMAT = "blastradius-evidence-chain/1"
MANIFEST_NAME = "MANIFEST.sha256"
CHAIN_NAME = "CHAIN.json"
EVIDENCE_NAME = "evidence.json"
UNMANIFESTED = frozenset({MANIFEST_NAME, CHAIN_NAME})
"""Files the manifest cannot cover: itself, and the chain record that holds its hash."""

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MANIFEST_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


# --------------------------------------------------------------------------- integrity


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def _check_path(path: str) -> None:
    """A manifest path must be relative, `/`-separated, and printable on one line.

    sha256sum escapes names with a newline or backslash; refusing them keeps the file
    readable by every sha256sum and by `verify` without an escaping scheme.
    """
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or any(part in {"", ".", ".."} for part in parts)
        or any(ch in path for ch in "\n\r\\")
    ):
        raise ValueError(f"not a relative pack path: {path!r}")


def manifest(files: Mapping[str, bytes]) -> str:
    """`MANIFEST.sha256`: one `<sha256>  <path>` line per file, sorted by path.

    The format of `sha256sum` (two spaces, text mode), so `sha256sum -c MANIFEST.sha256`
    run inside the pack checks it with no blastradius installed. MANIFEST.sha256 and
    CHAIN.json are skipped if present: neither can cover itself.
    """
    lines = []
    for path in sorted(files):
        if path in UNMANIFESTED:
            continue
        _check_path(path)
        lines.append(f"{sha256_hex(files[path])}  {path}\n")
    return "".join(lines)


def _parse_manifest(manifest_text: str) -> tuple[dict[str, str], list[str]]:
    entries: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(manifest_text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _MANIFEST_LINE.match(line)
        path = match.group(2) if match else ""
        if match is not None:
            try:
                _check_path(path)
            except ValueError:
                match = None
        if match is None:
            problems.append(f"{MANIFEST_NAME} line {number}: not '<sha256>  <relative path>'")
        elif path in entries:
            problems.append(f"{MANIFEST_NAME} line {number}: {path} listed twice")
        else:
            entries[path] = match.group(1)
    return entries, problems


def verify(files: Mapping[str, bytes], manifest_text: str) -> list[str]:
    """Problems between a pack's files and its manifest; empty when every file is intact.

    Each problem names one file: `altered: PATH` (content differs from its hash),
    `missing: PATH` (listed, not present), `added: PATH` (present, not listed; the
    manifest and the chain record are not counted), plus malformed manifest lines.
    Sorted by path so two checks of one pack print the same list.
    """
    entries, problems = _parse_manifest(manifest_text)
    found: list[tuple[str, str]] = []
    for path, digest in entries.items():
        if path not in files:
            found.append((path, f"missing: {path}"))
        elif sha256_hex(files[path]) != digest:
            found.append((path, f"altered: {path}"))
    for path in files:
        if path not in entries and path not in UNMANIFESTED:
            found.append((path, f"added: {path}"))
    return problems + [problem for _, problem in sorted(found)]


def chain_record(manifest_text: str, previous_manifest_sha256: str | None) -> dict[str, Any]:
    """CHAIN.json: this pack's manifest hash and the previous pack's (None for the first).

    Hashing the manifest (not every file again) is enough: the manifest fixes every
    file's content, so one hash per pack links the whole series.
    """
    if previous_manifest_sha256 is not None and not _SHA256.match(previous_manifest_sha256):
        raise ValueError("previous_manifest_sha256 must be 64 lower-case hex characters")
    return {
        "format": CHAIN_FORMAT,
        "algorithm": "sha256",
        "manifest": MANIFEST_NAME,
        "manifest_sha256": sha256_hex(manifest_text.encode("utf-8")),
        "previous_manifest_sha256": previous_manifest_sha256,
    }


def _json_or_none(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def chain_problems(files: Mapping[str, bytes]) -> list[str]:
    """Problems with CHAIN.json: absent, unreadable, or not matching MANIFEST.sha256.

    Also checks that its previous-pack link equals the one inside evidence.json (which
    the manifest covers), so editing the link in CHAIN.json alone is detected.
    """
    raw = files.get(CHAIN_NAME)
    if raw is None:
        return [f"missing: {CHAIN_NAME}"]
    chain = _json_or_none(raw)
    if not isinstance(chain, dict) or "manifest_sha256" not in chain:
        return [f"altered: {CHAIN_NAME} (not a chain record)"]
    problems = []
    manifest_bytes = files.get(MANIFEST_NAME, b"")
    if chain.get("manifest_sha256") != sha256_hex(manifest_bytes):
        problems.append(f"altered: {CHAIN_NAME} (manifest_sha256 does not match {MANIFEST_NAME})")
    evidence = _json_or_none(files.get(EVIDENCE_NAME))
    if isinstance(evidence, dict) and isinstance(evidence.get("meta"), dict):
        linked = evidence["meta"].get("previous_manifest_sha256")
        if chain.get("previous_manifest_sha256") != linked:
            problems.append(
                f"altered: {CHAIN_NAME} (previous_manifest_sha256 differs from {EVIDENCE_NAME})"
            )
    return problems


def verify_pack(files: Mapping[str, bytes]) -> list[str]:
    """Every problem of a pack given all its files (relative path → bytes): manifest and chain.

    The caller decides what "not a pack" is (no MANIFEST.sha256); here a missing
    manifest is just one more problem.
    """
    raw = files.get(MANIFEST_NAME)
    if raw is None:
        return [f"missing: {MANIFEST_NAME}"]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return [f"altered: {MANIFEST_NAME} (not UTF-8 text)"]
    return verify(files, text) + chain_problems(files)
