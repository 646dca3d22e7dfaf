"""The AWS event-stream framing (`application/vnd.amazon.eventstream`) that Bedrock streams in.

ConverseStream is not SSE: every event is a self-delimiting binary message whose
prelude and body each carry a CRC32, and the AWS SDKs check both before they parse a
byte of JSON. A fake that got a length or a checksum wrong would fail in the client's
framing layer, never reaching the code a chaos test is meant to exercise, so the frames
here are built exactly as the format defines them:

    [total length u32][headers length u32][prelude CRC32 u32]
    [headers: name length u8, name, type u8 (7 = string), value length u16, value]...
    [payload][message CRC32 u32]

All integers are big-endian; the message CRC covers every byte before it, prelude CRC
included. Only string headers are written, which is all Bedrock sends.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from typing import Any

__all__ = ["CONTENT_TYPE", "corrupted", "encode_message", "event", "exception"]

CONTENT_TYPE = "application/vnd.amazon.eventstream"
"""The response content type of every event-stream operation."""

_STRING_HEADER = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")
_PRELUDE_LENGTH = _PRELUDE.size + _CRC.size


def _crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def _encode_headers(headers: Mapping[str, str]) -> bytes:
    parts = []
    for name, value in headers.items():
        raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
        parts.append(
            struct.pack(">B", len(raw_name))
            + raw_name
            + struct.pack(">BH", _STRING_HEADER, len(raw_value))
            + raw_value
        )
    return b"".join(parts)


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One complete event-stream message: prelude, CRCs, string headers and payload."""
    encoded_headers = _encode_headers(headers)
    total = _PRELUDE_LENGTH + len(encoded_headers) + len(payload) + _CRC.size
    prelude = _PRELUDE.pack(total, len(encoded_headers))
    body = prelude + _CRC.pack(_crc32(prelude)) + encoded_headers + payload
    return body + _CRC.pack(_crc32(body))


def _json(document: Mapping[str, Any]) -> bytes:
    """Compact JSON with sorted keys, the way Bedrock's own frames are serialised."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")


def event(event_type: str, document: Mapping[str, Any]) -> bytes:
    """A `:message-type event` frame carrying `document` as its JSON payload."""
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, _json(document))


def exception(exception_type: str, document: Mapping[str, Any]) -> bytes:
    """A `:message-type exception` frame: a modeled error delivered inside a 200 stream.

    `exception_type` is the member name in the operation's stream union
    (`throttlingException`, `modelStreamErrorException`, …), which is what the SDKs
    map back to an error code.
    """
    headers = {
        ":message-type": "exception",
        ":exception-type": exception_type,
        ":content-type": "application/json",
    }
    return encode_message(headers, _json(document))


def corrupted(frame: bytes) -> bytes:
    """`frame` with its message CRC flipped: well-formed lengths, failing checksum."""
    (crc,) = _CRC.unpack(frame[-_CRC.size :])
    return frame[: -_CRC.size] + _CRC.pack(crc ^ 0xFFFFFFFF)
