"""Reading an Anthropic Messages request into a `Call`, with the API's own 400s.

Kept apart from the response side (`anthropic_wire`) because the checks are many and
each names the offending field the way the API does (`messages.0.content.0: …`), which is
what a router author reads when a cross-vendor translation goes wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fakes.server.wire import TOOL_RESULT_MARK, Call, ToolSpec, split_directive
from router.core.tokens import count_prompt

__all__ = ["Invalid", "parse_call"]

_TOOL_CHOICES: Mapping[str, str] = {"auto": "auto", "any": "required", "none": "none"}

_BLOCK_TYPES = frozenset(
    {
        "text", "image", "document", "search_result", "thinking", "redacted_thinking",
        "tool_use", "tool_result", "server_tool_use", "web_search_tool_result",
        "web_fetch_tool_result", "code_execution_tool_result", "container_upload",
    }
)  # fmt: skip


class Invalid(ValueError):
    """A request the API would refuse with a 400; the message names the offending field."""


def parse_call(body: Any) -> Call:
    """Validate a Messages request the way the API does and read it into a `Call`."""
    _need(isinstance(body, dict), "Request body must be a JSON object.")
    model, fault = split_directive(_name(body, "model", "model"))
    max_tokens = _max_tokens(body)
    system = _system_pieces(body.get("system"))
    messages = _messages(body)
    tools = _tools(body.get("tools"))
    stream = body.get("stream", False)
    _need(isinstance(stream, bool), "stream: Input should be a valid boolean")
    turns = [system, *messages] if system else messages
    prompt = "\n".join(piece for turn in turns for piece in turn)
    if _ends_with_tool_result(body["messages"]):
        prompt += TOOL_RESULT_MARK
    return Call(
        protocol="anthropic",
        model=model,
        stream=stream,
        input_tokens=count_prompt(turns),
        prompt=prompt,
        max_tokens=max_tokens,
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice")),
        fault=fault,
        carries_on=body["messages"][-1].get("role") == "assistant" and any(messages[-1]),
    )


def _need(condition: bool, problem: str) -> None:
    """Refuse the request with `problem` (which names the field) unless `condition` holds."""
    if not condition:
        raise Invalid(problem)


def _name(body: Mapping[str, Any], field: str, where: str) -> str:
    """A required non-empty string field."""
    value = body.get(field)
    _need(field in body, f"{where}: Field required")
    _need(isinstance(value, str) and bool(value), f"{where}: Input should be a valid string")
    return str(value)


def _max_tokens(body: Mapping[str, Any]) -> int:
    _need("max_tokens" in body, "max_tokens: Field required")
    value = body["max_tokens"]
    valid = isinstance(value, int) and not isinstance(value, bool)
    _need(valid, "max_tokens: Input should be a valid integer")
    _need(value >= 1, "max_tokens: Input should be greater than or equal to 1")
    return int(value)


def _system_pieces(system: Any) -> list[str]:
    if system is None or isinstance(system, str):
        return [system] if system else []
    _need(isinstance(system, list), "system: Input should be a valid string or a valid list")
    for j, block in enumerate(system):
        text_block = isinstance(block, dict) and block.get("type") == "text"
        _need(text_block, f"system.{j}.type: Input should be 'text'")
    return [_text_of(block, f"system.{j}") for j, block in enumerate(system)]


def _messages(body: Mapping[str, Any]) -> list[list[str]]:
    """Each message's text pieces, after checking roles, blocks and tool pairing."""
    _need("messages" in body, "messages: Field required")
    messages = body["messages"]
    _need(isinstance(messages, list), "messages: Input should be a valid list")
    _need(bool(messages), "messages: at least one message is required")
    turns = [_message_pieces(i, m, final=i == len(messages) - 1) for i, m in enumerate(messages)]
    _check_tool_pairing(messages)
    _need(
        not _prefill_ends_in_space(messages[-1]),
        "messages: final assistant content cannot end with trailing whitespace",
    )
    return turns


def _prefill_ends_in_space(message: Mapping[str, Any]) -> bool:
    """A final assistant message is a prefill, and the API refuses one ending in whitespace."""
    if message.get("role") != "assistant":
        return False
    content = message["content"]
    if isinstance(content, list):
        last = content[-1] if content else {}
        content = last.get("text", "") if last.get("type") == "text" else ""
    return bool(content) and content != content.rstrip()


def _message_pieces(i: int, message: Any, *, final: bool) -> list[str]:
    where = f"messages.{i}"
    _need(isinstance(message, dict), f"{where}: Input should be a valid dictionary")
    role = message.get("role")
    _need(
        role != "system",
        f'{where}.role: Unexpected role "system". The Messages API accepts a top-level '
        '`system` parameter, not "system" as an input message role.',
    )
    _need(role in ("user", "assistant"), f"{where}.role: Input should be 'user' or 'assistant'")
    _need("content" in message, f"{where}.content: Field required")
    pieces = _content_pieces(message["content"], f"{where}.content")
    _need(
        _has_content(message["content"]) or (final and role == "assistant"),
        f"{where}: all messages must have non-empty content except for the optional final "
        "assistant message",
    )
    return pieces


def _has_content(content: str | list[Any]) -> bool:
    return bool(content.strip()) if isinstance(content, str) else bool(content)


def _content_pieces(content: Any, where: str) -> list[str]:
    if isinstance(content, str):
        return [content]
    _need(isinstance(content, list), f"{where}: Input should be a valid string or a valid list")
    return [
        piece for j, block in enumerate(content) for piece in _block_pieces(block, f"{where}.{j}")
    ]


def _block_pieces(block: Any, where: str) -> list[str]:
    """The text a block contributes to the prompt; its required fields checked on the way."""
    _need(isinstance(block, dict), f"{where}: Input should be a valid dictionary")
    kind = block.get("type")
    expected = ", ".join(f"'{t}'" for t in sorted(_BLOCK_TYPES))
    _need(
        kind in _BLOCK_TYPES,
        f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected "
        f"tags: {expected}",
    )
    if kind == "text":
        return [_text_of(block, where)]
    if kind == "tool_use":
        _name(block, "id", f"{where}.id")
        name = _name(block, "name", f"{where}.name")
        _need(
            isinstance(block.get("input"), dict),
            f"{where}.input: Input should be a valid dictionary",
        )
        return [name, json.dumps(block["input"])]
    if kind == "tool_result":
        _name(block, "tool_use_id", f"{where}.tool_use_id")
        content = block.get("content")
        return [] if content is None else _content_pieces(content, f"{where}.content")
    return []


def _text_of(block: Mapping[str, Any], where: str) -> str:
    text = block.get("text")
    _need(isinstance(text, str), f"{where}.text: Field required")
    return str(text)


def _blocks(message: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == kind]


def _check_tool_pairing(messages: list[Any]) -> None:
    """Every `tool_result` answers a `tool_use` of the message before; every `tool_use`
    followed by another message is answered in it — the API's own two checks."""
    for i, message in enumerate(messages):
        results = {b["tool_use_id"] for b in _blocks(message, "tool_result")}
        offered = {b["id"] for b in _blocks(messages[i - 1], "tool_use")} if i else set()
        stray = ", ".join(sorted(results - offered))
        _need(
            not stray,
            f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
            f"{stray}. Each `tool_result` block must have a corresponding `tool_use` block in "
            "the previous message.",
        )
        if i + 1 < len(messages):
            answered = {b["tool_use_id"] for b in _blocks(messages[i + 1], "tool_result")}
            unanswered = ", ".join(
                sorted({b["id"] for b in _blocks(message, "tool_use")} - answered)
            )
            _need(
                not unanswered,
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {unanswered}. Each `tool_use` block must have a "
                "corresponding `tool_result` block in the next message.",
            )


def _ends_with_tool_result(messages: list[Any]) -> bool:
    last = messages[-1]
    return last.get("role") == "user" and bool(_blocks(last, "tool_result"))


def _tools(tools: Any) -> tuple[ToolSpec, ...]:
    """Client tools as `ToolSpec`s; Anthropic-run server tools (typed, schema-less) are
    accepted but left out, since the fake never calls them on the client's behalf."""
    if tools is None:
        return ()
    _need(isinstance(tools, list), "tools: Input should be a valid list")
    specs = []
    for k, tool in enumerate(tools):
        _need(isinstance(tool, dict), f"tools.{k}: Input should be a valid dictionary")
        name = _name(tool, "name", f"tools.{k}.custom.name")
        if tool.get("type", "custom") != "custom":
            continue
        schema = tool.get("input_schema")
        _need(isinstance(schema, dict), f"tools.{k}.custom.input_schema: Field required")
        specs.append(ToolSpec(name, str(tool.get("description", "")), schema))
    return tuple(specs)


def _tool_choice(choice: Any) -> str:
    if choice is None:
        return "auto"
    _need(isinstance(choice, dict), "tool_choice: Input should be a valid dictionary")
    kind = _name(choice, "type", "tool_choice.type")
    if kind == "tool":
        return f"tool:{_name(choice, 'name', 'tool_choice.tool.name')}"
    _need(
        kind in _TOOL_CHOICES, "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
    )
    return _TOOL_CHOICES[kind]
