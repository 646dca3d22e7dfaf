"""What a client may tell the gateway about a call besides its body: its id, task and retry.

Three optional headers, each one a thing the engine already understands:

- `x-request-id` — the client's own id for the call, used as the trace's `request_id`,
  so a client's logs and the gateway's audit log join on one key (1–64 characters of
  letters, digits and `._:-`);
- `x-blastradius-task` — the task class (`triage`, `summarise`…), which quality and
  cascade strategies score deployments by, and which reports group by;
- `x-stainless-retry-count` — sent by the official OpenAI SDK on every call it makes
  (0, then 1, 2… on its own retries): the trace's `client_attempt`, so reports tell the
  client's retries (the agentic layer) from the router's, as the simulator does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from router.server.errors import ClientError

__all__ = ["REQUEST_ID_HEADER", "RETRY_HEADER", "TASK_HEADER", "ClientContext", "client_context"]

REQUEST_ID_HEADER = "x-request-id"
TASK_HEADER = "x-blastradius-task"
RETRY_HEADER = "x-stainless-retry-count"

_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_TASK = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True, slots=True)
class ClientContext:
    """The client's id for the call (None: the gateway makes one), its task, its retry count."""

    request_id: str | None = None
    task: str | None = None
    client_attempt: int = 0


def client_context(headers: Mapping[str, str]) -> ClientContext:
    """Read the three headers; a malformed one is a 400 naming it (never sent upstream)."""
    request_id = headers.get(REQUEST_ID_HEADER)
    if request_id is not None and not _ID.fullmatch(request_id):
        raise ClientError(
            f"{REQUEST_ID_HEADER} must be 1-64 letters, digits or ._:- characters",
            param=REQUEST_ID_HEADER,
            code="invalid_header",
        )
    task = headers.get(TASK_HEADER)
    if task is not None and not _TASK.fullmatch(task):
        raise ClientError(
            f"{TASK_HEADER} must be 1-128 letters, digits or ._:- characters",
            param=TASK_HEADER,
            code="invalid_header",
        )
    retries = headers.get(RETRY_HEADER, "0")
    if not retries.isdigit() or int(retries) > 1000:
        raise ClientError(
            f"{RETRY_HEADER} must be a whole number of retries (0-1000)",
            param=RETRY_HEADER,
            code="invalid_header",
        )
    return ClientContext(request_id, task, int(retries))
