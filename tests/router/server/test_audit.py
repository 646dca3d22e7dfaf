"""The audit log: trace rows as JSON lines, read back as the simulator's two tables.

A round trip through `AuditLog` and `read_audit_log` gives exactly the DataFrames the
simulator builds from the same rows; a real `blastradius serve --audit-log` writes its
rows within a second, never writes a prompt or a key, and its log feeds
`reports.metrics` as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import openai
import pandas as pd
import pytest

from fakes.server.world import FakeWorld
from reports.audit_log import read_audit_log
from reports.metrics import RunContext, compute_metrics
from router.core.trace import (
    ATTEMPT_COLUMNS,
    REQUEST_COLUMNS,
    AttemptRow,
    RequestRow,
    TraceRecorder,
)
from router.server.audit import AuditLog
from router.server.fingerprints import PromptFingerprints
from simulator.cli import main
from tests.fakes.server.harness import running_world
from tests.router.server.gateway import load_policy
from tests.router.server.serving import policy_data, serve_process, write_policy

ATTEMPTS = [
    AttemptRow("r1", "acme", "default", "", 0.5, 1, "client", "gpt@openai", 0.5, 0.7,
               "server", 500, 12, 0, 0.0, "", None),
    AttemptRow("r1", "acme", "default", "", 0.5, 2, "router", "claude@anthropic", 0.75, 1.25,
               "ok", 200, 12, 30, 0.000486, "failover", 0.3),
]  # fmt: skip
REQUESTS = [
    RequestRow("r1", "acme", "default", "", 0.5, 1.25, "ok", "claude@anthropic", 2,
               0.000486, True, True, "", 1),
    RequestRow("r2", "acme", "nope", "", 2.0, 2.0, "rejected", "", 0, 0.0, False, True,
               "unknown_route", 1),
]  # fmt: skip


def test_round_trip_gives_the_simulators_frames(tmp_path: Path) -> None:
    trace = TraceRecorder()
    log = AuditLog(tmp_path / "audit.jsonl", trace)
    log.open()
    trace.add_attempt(ATTEMPTS[0])
    assert log.flush() == 1
    trace.add_attempt(ATTEMPTS[1])
    for row in REQUESTS:
        trace.add_request(row)
    log.close()
    assert trace.attempts == () and trace.requests == ()  # drained: memory stays bounded
    attempts, requests = read_audit_log(tmp_path / "audit.jsonl")
    # What simulator/driver.py builds from the same rows for attempts.csv / requests.csv.
    pd.testing.assert_frame_equal(
        attempts, pd.DataFrame.from_records(ATTEMPTS, columns=list(ATTEMPT_COLUMNS))
    )
    pd.testing.assert_frame_equal(
        requests, pd.DataFrame.from_records(REQUESTS, columns=list(REQUEST_COLUMNS))
    )


class _FullDisk:
    """A file whose writes fail until `healed`, as on a full disk."""

    def __init__(self) -> None:
        self.healed = False
        self.text = b""

    def write(self, data: bytes) -> int:
        if not self.healed:
            raise OSError(28, "No space left on device")
        self.text += data
        return len(data)

    def flush(self) -> None:
        return None


def test_rows_a_failed_write_could_not_save_are_written_by_the_next_flush(
    tmp_path: Path,
) -> None:
    trace = TraceRecorder()
    log = AuditLog(tmp_path / "audit.jsonl", trace)
    disk = _FullDisk()
    log._file = disk  # type: ignore[assignment]
    for row in ATTEMPTS:
        trace.add_attempt(row)
    trace.add_request(REQUESTS[0])
    with pytest.raises(OSError):
        log.flush()
    assert trace.attempts == tuple(ATTEMPTS) and trace.requests == (REQUESTS[0],)
    disk.healed = True
    assert log.flush() == 3 and log.rows_written == 3
    kinds = [json.loads(line)["kind"] for line in disk.text.splitlines()]
    assert kinds == ["attempt", "attempt", "request"]


def test_request_lines_carry_their_fingerprint_even_after_a_failed_write(
    tmp_path: Path,
) -> None:
    trace = TraceRecorder()
    prints = PromptFingerprints(b"k")
    log = AuditLog(tmp_path / "audit.jsonl", trace, fingerprints=prints)
    disk = _FullDisk()
    log._file = disk  # type: ignore[assignment]
    prints.note("r1", {"messages": "one"})
    prints.note("r2", {"messages": "two"})
    for row in ATTEMPTS:
        trace.add_attempt(row)
    for row in REQUESTS:
        trace.add_request(row)
    with pytest.raises(OSError):
        log.flush()
    disk.healed = True
    assert log.flush() == 4
    lines = [json.loads(line) for line in disk.text.splitlines()]
    assert [line.get("prompt_hmac") for line in lines] == [
        None,
        None,
        prints.of({"messages": "one"}),
        prints.of({"messages": "two"}),
    ]
    assert "prompt_hmac" not in lines[0] and len(prints) == 0


def test_a_torn_last_line_is_skipped_and_a_bad_line_is_located(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"kind": "request", "request_id": "r1"}\n{"kind": "att', encoding="utf-8")
    attempts, requests = read_audit_log(path)
    assert (len(attempts), list(requests["request_id"])) == (0, ["r1"])
    path.write_text('{"kind": "span"}\n{}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"audit.jsonl:1: kind must be"):
        read_audit_log(path)


SECRET_PROMPT = "my bank password is hunter2-XYZZY-7731"
CLIENT_KEY = "sk-client-DO-NOT-LOG-4242"
UPSTREAM_KEY = "sk-upstream-DO-NOT-LOG-9898"


def test_serve_writes_rows_live_without_prompts_or_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """...and, with an operator's key, each request row's prompt fingerprint."""
    monkeypatch.setenv("AUDIT_PROMPT_KEY", "operator-secret")
    audit = tmp_path / "logs" / "audit.jsonl"
    with running_world(FakeWorld(load_policy(), seed=5)) as ready:
        data = policy_data(ready)
        for deployment in data["deployments"]:
            deployment["api_key"] = UPSTREAM_KEY
        digest = hashlib.sha256(CLIENT_KEY.encode()).hexdigest()
        data["tenants"] = {"acme": {"key_sha256": [digest]}}
        policy = write_policy(tmp_path / "policy.yaml", data)
        options = ("--audit-log", str(audit), "--audit-prompt-key-env", "AUDIT_PROMPT_KEY")
        with serve_process(policy, *options) as served:
            client = openai.OpenAI(base_url=served.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
            messages = [{"role": "user", "content": SECRET_PROMPT}]
            client.chat.completions.create(model="default", messages=messages)  # type: ignore[arg-type]
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(model="nope", messages=messages)  # type: ignore[arg-type]
            client.close()
            # Written while the gateway runs: at most one flush tick (1 s) late.
            deadline = time.monotonic() + 3.0
            while not (audit.exists() and audit.read_text().count("\n") >= 3):
                assert time.monotonic() < deadline, "the audit log was not flushed within 3 s"
                time.sleep(0.05)
            served.process.terminate()
            assert served.process.wait(15) == 0
    text = audit.read_text(encoding="utf-8")
    for secret in (SECRET_PROMPT, "hunter2", CLIENT_KEY, UPSTREAM_KEY, digest, "operator-secret"):
        assert secret not in text
    # The operator can tell which request a row was: the keyed hash of the body sent.
    for route, line in zip(("default", "nope"), _request_lines(text), strict=True):
        body = {"messages": [{"content": SECRET_PROMPT, "role": "user"}], "model": route}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        assert line["prompt_hmac"] == hmac.new(b"operator-secret", canonical, "sha256").hexdigest()
    attempts, requests = read_audit_log(audit)
    assert list(attempts.columns) == list(ATTEMPT_COLUMNS)
    assert list(requests.columns) == list(REQUEST_COLUMNS)
    assert sorted(requests["final"]) == ["ok", "rejected"]
    assert set(requests["tenant"]) == {"acme"}
    assert list(attempts["outcome"]) == ["ok"] and list(attempts["deployment"]) == ["gpt@openai"]
    answered = attempts.iloc[0]  # its time to first token, as the gateway saw the token come
    assert 0 < answered["ttft_s"] < answered["end_s"] - answered["start_s"]
    # reports/ reads the live run as it reads a simulated one.
    context = RunContext(duration=60.0, faults=(), recovery_window=60.0, primaries=frozenset())
    metrics = compute_metrics(attempts, requests, context)
    assert metrics["requests"] == 2 and metrics["availability"] == 0.5


def _request_lines(text: str) -> list[dict[str, object]]:
    """The request rows of an audit log, in the order they were written."""
    lines = [json.loads(line) for line in text.splitlines()]
    return [line for line in lines if line["kind"] == "request"]


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (["--audit-prompt-key-env", "AUDIT_PROMPT_KEY"], "needs --audit-log"),
        (["--audit-log", "a.jsonl", "--audit-prompt-key-env", "UNSET_KEY_VAR"], "$UNSET_KEY_VAR"),
    ],
)
def test_a_prompt_key_without_a_log_or_a_secret_is_a_usage_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    problem: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UNSET_KEY_VAR", raising=False)
    code = main(["serve", "--policy", "policy.yaml", *options])
    assert code == 2
    err = capsys.readouterr().err
    assert problem in err and "Traceback" not in err
    assert not (tmp_path / "a.jsonl").exists()
