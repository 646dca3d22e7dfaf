"""Client-facing errors in OpenAI's envelope: the one error shape every OpenAI SDK parses.

A `ClientError` is raised while reading a request the gateway must refuse itself
(malformed JSON, wrong types, oversized body); it always maps to a 4xx and the request
never reaches the engine, let alone a provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from router.server.adapters.base import openai_error_body

__all__ = ["ClientError", "error_response"]


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
