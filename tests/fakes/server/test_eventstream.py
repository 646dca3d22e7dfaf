"""The event-stream encoder, checked by botocore's own decoder (lengths, CRCs, headers)."""

from __future__ import annotations

import json
import struct
import zlib

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer, EventStreamMessage

from fakes.server import eventstream


def _decode(data: bytes) -> list[EventStreamMessage]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


@pytest.mark.parametrize(
    ("headers", "payload"),
    [
        ({}, b""),
        ({":message-type": "event"}, b"{}"),
        ({":event-type": "contentBlockDelta", "x-ünïcode": "välue ✓"}, "tëxt ✓".encode()),
        ({":content-type": "application/json"}, b"x" * 70_000),
    ],
    ids=["empty", "small", "unicode", "large"],
)
def test_botocore_decodes_what_encode_message_writes(
    headers: dict[str, str], payload: bytes
) -> None:
    frame = eventstream.encode_message(headers, payload)

    (message,) = _decode(frame)

    assert message.headers == headers
    assert message.payload == payload
    assert message.prelude.total_length == len(frame)


def test_prelude_and_message_crcs_cover_the_bytes_before_them() -> None:
    frame = eventstream.encode_message({":event-type": "messageStart"}, b'{"role":"assistant"}')

    total, headers_length, prelude_crc = struct.unpack(">III", frame[:12])
    (message_crc,) = struct.unpack(">I", frame[-4:])

    assert total == len(frame)
    assert headers_length == 1 + len(":event-type") + 1 + 2 + len("messageStart")
    assert prelude_crc == zlib.crc32(frame[:8])
    assert message_crc == zlib.crc32(frame[:-4])


def test_frames_concatenate_into_a_stream_botocore_splits() -> None:
    frames = [eventstream.event("contentBlockDelta", {"n": n}) for n in range(5)]

    messages = _decode(b"".join(frames))

    assert [json.loads(m.payload) for m in messages] == [{"n": n} for n in range(5)]


def test_event_carries_bedrock_headers_and_compact_sorted_json() -> None:
    (message,) = _decode(eventstream.event("messageStop", {"stopReason": "end_turn", "p": "ab"}))

    assert message.headers == {
        ":event-type": "messageStop",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert message.payload == b'{"p":"ab","stopReason":"end_turn"}'


def test_exception_names_the_stream_union_member() -> None:
    frame = eventstream.exception("throttlingException", {"message": "slow down"})

    (message,) = _decode(frame)

    assert message.headers == {
        ":message-type": "exception",
        ":exception-type": "throttlingException",
        ":content-type": "application/json",
    }
    assert json.loads(message.payload) == {"message": "slow down"}


def test_corrupted_frame_fails_botocores_checksum() -> None:
    frame = eventstream.event("contentBlockDelta", {"delta": {"text": "x"}})

    broken = eventstream.corrupted(frame)

    assert len(broken) == len(frame)
    assert broken[:-4] == frame[:-4]
    with pytest.raises(ChecksumMismatch):
        _decode(broken)
