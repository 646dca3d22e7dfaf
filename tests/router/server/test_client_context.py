"""The client's id, task and retry count, from headers to the trace."""

from __future__ import annotations

import pytest

from router.server.client_context import ClientContext, client_context
from router.server.errors import ClientError
from tests.router.server.gateway import call_json, gateway


@pytest.mark.parametrize(
    ("headers", "context"),
    [
        ({}, ClientContext()),
        ({"x-request-id": "job-42.3"}, ClientContext("job-42.3")),
        ({"x-blastradius-task": "triage"}, ClientContext(task="triage")),
        ({"x-stainless-retry-count": "2"}, ClientContext(client_attempt=2)),
    ],
)
def test_headers_become_the_calls_context(headers: dict[str, str], context: ClientContext) -> None:
    assert client_context(headers) == context


@pytest.mark.parametrize(
    "headers",
    [
        {"x-request-id": ""},
        {"x-request-id": "x" * 65},
        {"x-request-id": "has space"},
        {"x-blastradius-task": "semi;colon"},
        {"x-stainless-retry-count": "-1"},
        {"x-stainless-retry-count": "two"},
    ],
)
def test_a_malformed_header_is_a_400_naming_it(headers: dict[str, str]) -> None:
    with pytest.raises(ClientError) as raised:
        client_context(headers)
    assert raised.value.status == 400 and raised.value.param == next(iter(headers))


def test_the_trace_carries_the_clients_id_task_and_retry() -> None:
    with gateway() as served:
        served.client.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": "ping"}],
            extra_headers={"x-request-id": "job-7", "x-blastradius-task": "triage"},
        )
        answer = served.client.with_options(max_retries=0).chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": "ping"}],
            extra_headers={"x-request-id": "job-7.1", "x-stainless-retry-count": "1"},
        )
        assert answer.id == "chatcmpl-job-7.1"
        rows = {row.request_id: row for row in served.trace.requests}
        attempts = {row.request_id: row for row in served.trace.attempts}
    assert rows["job-7"].task == "triage" and rows["job-7"].client_attempt == 0
    assert rows["job-7.1"].client_attempt == 1
    assert attempts["job-7"].task == "triage" and attempts["job-7.1"].origin == "client"


def test_a_bad_header_is_refused_before_any_upstream_call() -> None:
    with gateway() as served:
        status, body, _ = call_json(
            "POST",
            served.url + "/v1/chat/completions",
            {"model": "default", "messages": [{"role": "user", "content": "ping"}]},
            headers={"x-request-id": "no spaces please"},
        )
        assert status == 400 and body["error"]["param"] == "x-request-id"
        assert served.trace.attempts == ()
