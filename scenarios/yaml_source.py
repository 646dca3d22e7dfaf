"""YAML that remembers where every value came from.

Users fix config files by line number, so parsing keeps a map from each field
path (`("routes", 2, "targets", 0)`) to its line. Validation happens elsewhere
(pydantic, in `router.core.policy`); this module only turns text into plain data
plus that map, and reports syntax errors and duplicate keys with their lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from router.core.errors import ConfigError, ConfigIssue
from router.core.policy import FieldPath, format_path

__all__ = ["YamlSource", "parse_yaml"]


@dataclass(slots=True)
class YamlSource:
    """Parsed data and the 1-based line of every field path in it."""

    source: str
    data: Any
    lines: dict[FieldPath, int] = field(default_factory=dict)

    def line_of(self, path: FieldPath) -> int | None:
        """Line of `path`, or of its nearest ancestor that exists (for missing fields)."""
        while True:
            line = self.lines.get(path)
            if line is not None or not path:
                return line
            path = path[:-1]


def _build(node: yaml.Node, path: FieldPath, out: YamlSource, issues: list[ConfigIssue]) -> Any:
    out.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader("").construct_object(key_node)  # scalar keys only
            if isinstance(key, list | dict):
                issues.append(
                    ConfigIssue(
                        file=out.source,
                        line=key_node.start_mark.line + 1,
                        field=format_path(path),
                        message="mapping keys must be plain scalars",
                    )
                )
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in result:
                issues.append(
                    ConfigIssue(
                        file=out.source,
                        line=key_node.start_mark.line + 1,
                        field=format_path((*path, key)),
                        message="duplicate key (an earlier value would be silently lost)",
                    )
                )
            result[key] = _build(value_node, (*path, key), out, issues)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), out, issues) for i, item in enumerate(node.value)]
    return yaml.SafeLoader("").construct_object(node)


def parse_yaml(text: str, *, source: str) -> YamlSource:
    """Parse one YAML document; raise `ConfigError` with the line on syntax errors."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = None if mark is None else mark.line + 1
        problem = error.problem or error.context or "invalid YAML"
        raise ConfigError(
            [ConfigIssue(file=source, line=line, field="", message=f"YAML syntax: {problem}")]
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(
            [ConfigIssue(file=source, line=None, field="", message=f"YAML: {error}")]
        ) from None
    out = YamlSource(source=source, data=None)
    if node is None:
        return out
    issues: list[ConfigIssue] = []
    out.data = _build(node, (), out, issues)
    if issues:
        raise ConfigError(issues)
    return out
