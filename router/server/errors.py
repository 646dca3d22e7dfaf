"""Client-facing errors in OpenAI's envelope: the one error shape every OpenAI SDK parses.

A `ClientError` is raised while reading a request the gateway must refuse itself
(malformed JSON, wrong types, oversized body); it always maps to a 4xx and the request
never reaches the engine, let alone a provider.

A vendor's refusal reaches the client as the vendor worded it (`for_client`), except
where the wording is about the gateway rather than the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web

from router.core.outcomes import Outcome
from router.server.adapters.base import UpstreamError, openai_error_body

__all__ = ["ClientError", "error_response", "for_client"]


class ClientError(Exception):
    """A request the gateway refuses before routing: status, message and the field at fault."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        if not 400 <= status < 500:
            raise ValueError(f"a client error needs a 4xx status, got {status}")
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.type = type_

    def response(self) -> web.Response:
        """The 4xx answer with OpenAI's error body."""
        body = openai_error_body(self.message, self.type, self.code, self.param)
        return web.json_response(body, status=self.status)


def error_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> web.Response:
    """An error answer with an already-built OpenAI envelope."""
    return web.json_response(dict(body), status=status, headers=dict(headers or {}))


def for_client(error: UpstreamError, deployment: str) -> UpstreamError:
    """What a client may see of a vendor's refusal.

    An auth refusal is about the gateway's own key, and vendors echo part of it
    ("Incorrect API key provided: sk-4sJHr***…w8ZP"): a tenant must neither see that
    nor be told to fix a key that is not theirs. It gets the gateway's account instead,
    naming the deployment and the vendor's status: what the operator needs to act, as
    the trace's `auth` attempt row (and the audit log) also record.
    """
    if error.outcome is not Outcome.AUTH:
        return error
    message = (
        f"The provider refused the gateway's credentials for deployment `{deployment}` "
        f"(HTTP {error.status}). This is not about your API key: the gateway's operator "
        "must fix the deployment's key."
    )
    return replace(error, body=openai_error_body(message, "upstream_error", "upstream_auth_failed"))
