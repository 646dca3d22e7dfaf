"""Azure OpenAI: OpenAI's chat protocol behind Azure's paths, keys, filters and gateway errors.

What differs from api.openai.com, and why a router cares:
- the deployment is in the path (`/openai/deployments/{deployment}/chat/completions`) and
  every call needs `?api-version=`; without it Azure answers 404 "Resource not found",
  which a router must not mistake for a withdrawn model;
- the key comes in `api-key` (or `Authorization: Bearer` with an Entra token);
- every answer carries content-filter annotations, and a stream opens with a filter-only
  chunk whose `id`, `model` and `object` are empty and whose `choices` is empty, which
  breaks clients that validate chunks strictly;
- a blocked prompt is a 400 `content_filter` with an `innererror`, a blocked completion a
  200 with `finish_reason: content_filter`;
- gateway-level refusals (401, 404, 429) carry only `code` (a string, "429") and `message`.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from aiohttp import web

from fakes.server.openai_family import ChatRules, local_reply
from fakes.server.openai_wire import OpenAIStream, OpenAIWire, Refusal, sse
from fakes.server.wire import (
    Answer,
    Call,
    ChatHandler,
    ErrorKind,
    Finish,
    RateSnapshot,
    Reply,
    StreamEncoder,
)

__all__ = ["AzureStream", "AzureWire"]

API_VERSION = "2024-10-21"
"""The GA inference API version named in rate-limit messages (errors do not see the request)."""

_CATEGORIES = ("hate", "self_harm", "sexual", "violence")

_RESOURCE_NOT_FOUND = Refusal(404, "Resource not found", None, "404", bare=True)

_RATE_MESSAGE = (
    "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
    f"{API_VERSION} have exceeded token rate limit of your current OpenAI S0 pricing tier. "
    "Please retry after {seconds} seconds. Please go here: https://aka.ms/oai/quotaincrease "
    "if you would like to further increase the default rate limit."
)

_AZURE_REFUSALS: Mapping[ErrorKind, Refusal] = {
    ErrorKind.AUTH: Refusal(
        401,
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
        "provide a valid key for an active subscription and use a correct regional API "
        "endpoint for your resource.",
        None,
        "401",
        bare=True,
    ),
    ErrorKind.MODEL_GONE: Refusal(
        404,
        "The API deployment for this resource does not exist. If you created the deployment "
        "within the last 5 minutes, please wait a moment and try again.",
        None,
        "DeploymentNotFound",
        bare=True,
    ),
    ErrorKind.RATE_LIMITED: Refusal(429, _RATE_MESSAGE, None, "429", bare=True),
    ErrorKind.CONTENT_FILTER: Refusal(
        400,
        "The response was filtered due to the prompt triggering Azure OpenAI's content "
        "management policy. Please modify your prompt and retry. To learn more about our "
        "content filtering policies please read our documentation: "
        "https://go.microsoft.com/fwlink/?linkid=2198766",
        None,
        "content_filter",
        "prompt",
    ),
}


def filter_results(*, flagged: str | None = None) -> dict[str, Any]:
    """Azure's per-category verdicts: all `safe`, or `flagged` filtered at medium severity."""
    results: dict[str, Any] = {
        name: {"filtered": name == flagged, "severity": "medium" if name == flagged else "safe"}
        for name in _CATEGORIES
    }
    results["jailbreak"] = {"filtered": False, "detected": False}
    return results


def _guid(token: str, salt: str) -> str:
    digest = hashlib.blake2b(f"{salt}:{token}".encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest))


class AzureWire(OpenAIWire):
    """Azure OpenAI's deployment-scoped chat completions (`protocol: azure-openai`)."""

    protocol: ClassVar[str] = "azure-openai"
    rules: ClassVar[ChatRules] = ChatRules(model_required=False)

    def routes(self, serve: ChatHandler, models: Sequence[str]) -> list[web.RouteDef]:
        """The deployment-scoped chat route; the deployment name is the model."""

        async def chat(request: web.Request) -> web.StreamResponse:
            if not request.query.get("api-version"):
                reply = self._reply_for(request)
                return self._render(_RESOURCE_NOT_FOUND, reply)
            deployment = request.match_info["deployment"]
            return await self._chat(request, serve, deployment=deployment)

        return [web.post("/openai/deployments/{deployment}/chat/completions", chat)]

    def _reply_for(self, request: web.Request) -> Reply:
        return local_reply(request.path_qs.encode())

    def _authorized(self, request: web.Request) -> bool:
        """An `api-key` header, or a bearer token as Entra ID clients send."""
        return bool(request.headers.get("api-key", "").strip()) or super()._authorized(request)

    def _unauthenticated(self) -> Refusal:
        return _AZURE_REFUSALS[ErrorKind.AUTH]

    # -- answers --------------------------------------------------------------------

    def stream(self, call: Call, answer: Answer, reply: Reply) -> StreamEncoder:
        """OpenAI's chunks, opened by the filter-only chunk and annotated per choice."""
        return AzureStream(self, call, answer, reply)

    def _choice_extras(self, answer: Answer) -> dict[str, Any]:
        flagged = "violence" if answer.finish == Finish.CONTENT_FILTER else None
        return {"content_filter_results": filter_results(flagged=flagged)}

    def _completion_extras(self, reply: Reply) -> dict[str, Any]:
        return {
            "system_fingerprint": f"fp_{reply.token[:10]}",
            "prompt_filter_results": [
                {"prompt_index": 0, "content_filter_results": filter_results()}
            ],
        }

    # -- headers --------------------------------------------------------------------

    def _headers(self, reply: Reply) -> dict[str, str]:
        headers = super()._headers(reply)
        headers["x-request-id"] = _guid(reply.token, "request")
        headers["apim-request-id"] = _guid(reply.token, "apim")
        del headers["openai-version"]
        return headers

    def _rate_headers(self, rate: RateSnapshot) -> dict[str, str]:
        """Azure sends limits and remainders but no reset durations."""
        return {
            "x-ratelimit-limit-requests": str(rate.limit_requests),
            "x-ratelimit-limit-tokens": str(rate.limit_tokens),
            "x-ratelimit-remaining-requests": str(rate.remaining_requests),
            "x-ratelimit-remaining-tokens": str(rate.remaining_tokens),
        }

    # -- errors ---------------------------------------------------------------------

    def blocked_prompt(self, call: Call, reply: Reply) -> web.Response:
        """400 `content_filter` with `innererror.code: ResponsibleAIPolicyViolation`."""
        refusal = _AZURE_REFUSALS[ErrorKind.CONTENT_FILTER]
        body = self._error_body(refusal)
        body["error"]["status"] = refusal.status
        body["error"]["innererror"] = {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": filter_results(flagged="violence"),
        }
        return web.json_response(body, status=refusal.status, headers=self._headers(reply))

    def _refusal(
        self, kind: ErrorKind, message: str | None, retry_after_s: float | None, reply: Reply
    ) -> Refusal:
        """Azure's own envelope for gateway errors; OpenAI's (passed through) for the rest."""
        if kind not in _AZURE_REFUSALS:
            return super()._refusal(kind, message, retry_after_s, reply)
        refusal = _AZURE_REFUSALS[kind]
        if message is not None:
            return replace(refusal, message=message)
        if kind == ErrorKind.RATE_LIMITED:
            wait = retry_after_s if retry_after_s is not None else 60.0
            text = _RATE_MESSAGE.format(seconds=max(1, math.ceil(wait)))
            return replace(refusal, message=text)
        return refusal

    def _error_body(self, refusal: Refusal) -> dict[str, Any]:
        if refusal.bare:
            return {"error": {"code": refusal.code, "message": refusal.message}}
        return super()._error_body(refusal)


class AzureStream(OpenAIStream):
    """Azure's stream: a filter-only opening chunk, then chunks annotated per choice."""

    def start(self) -> bytes:
        """`prompt_filter_results` with empty id/model/object and no choices, then the role."""
        opening = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [
                {"prompt_index": 0, "content_filter_results": filter_results()}
            ],
        }
        return sse(opening) + super().start()

    def _choice(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        choice = super()._choice(delta, finish_reason)
        if finish_reason == "content_filter":
            choice["content_filter_results"] = filter_results(flagged="violence")
        elif "content" in delta and "role" not in delta:
            choice["content_filter_results"] = filter_results()
        else:
            choice["content_filter_results"] = {}
        return choice

    def _base(self) -> dict[str, Any]:
        base = super()._base()
        base.pop("prompt_filter_results", None)
        return base
