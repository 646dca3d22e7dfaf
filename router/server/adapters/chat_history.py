"""Reading the client's OpenAI chat history, for adapters that rebuild it in another shape.

Gemini, Bedrock and Anthropic want the same facts out of an OpenAI body — the text of
a message, an image as bytes or a URL, a tool call's arguments as an object, the name
of the function a tool result answers — and each of them refuses a request whose
history it cannot parse. Reading those facts in one place keeps the adapters' own
modules about their vendor's shapes only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Image", "arguments_object", "content_parts", "image_of", "text_of", "tool_names"]


@dataclass(frozen=True, slots=True)
class Image:
    """An `image_url` part: inline bytes (`data` base64, `media_type`) or a remote `url`."""

    media_type: str
    data: str | None = None
    url: str | None = None


def text_of(content: Any) -> str:
    """The text of OpenAI content: a string, or the text parts of a list joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text") or "")
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


def image_of(part: Mapping[str, Any]) -> Image:
    """An `image_url` part as inline base64 (from a `data:` URL) or a remote URL."""
    image = part.get("image_url")
    url = str(image.get("url", "")) if isinstance(image, Mapping) else str(image or "")
    if url.startswith("data:") and ";base64," in url:
        media, _, data = url.removeprefix("data:").partition(";base64,")
        return Image(media or "image/png", data=data)
    lowered = url.lower().split("?", 1)[0]
    media = next(
        (f"image/{kind}" for kind in ("png", "gif", "webp") if lowered.endswith("." + kind)),
        "image/jpeg",
    )
    return Image(media, url=url)


def content_parts(
    content: Any,
    text: Callable[[str], dict[str, Any]],
    image: Callable[[Image], dict[str, Any] | None],
) -> list[dict[str, Any]]:
    """OpenAI content (a string or a list of parts) as a vendor's parts, in order.

    Each non-empty text goes through `text`, each image through `image` (None drops it:
    a vendor that cannot take that image); anything else is skipped.
    """
    if isinstance(content, str):
        return [text(content)] if content else []
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text" and part.get("text"):
            parts.append(text(str(part["text"])))
        elif part.get("type") == "image_url":
            rendered = image(image_of(part))
            if rendered is not None:
                parts.append(rendered)
    return parts


def arguments_object(raw: Any) -> dict[str, Any]:
    """OpenAI's JSON-string arguments as the object other vendors require.

    Arguments a model produced are not always valid JSON; rather than failing the
    whole request over one bad string, it is kept under `arguments`.
    """
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except ValueError:
        return {"arguments": raw}
    return value if isinstance(value, dict) else {"value": value}


def tool_names(messages: Iterable[Any]) -> dict[str, str]:
    """Function name by tool-call id, from the assistant turns of a history.

    A tool result in OpenAI's shape names only the call it answers; Gemini's
    `functionResponse` needs the function's name, so it is looked up here.
    """
    names: dict[str, str] = {}
    for message in messages:
        if not isinstance(message, Mapping) or message.get("role") != "assistant":
            continue
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping):
                names[str(call.get("id", ""))] = str(function.get("name", ""))
    return names
