"""YAML that remembers where every value came from.

Users fix config files by line number, so parsing keeps a map from each field
path (`("routes", 2, "targets", 0)`) to its line. Validation happens elsewhere
(pydantic, in `router.core.policy`); this module only turns text into plain data
plus that map, and reports syntax errors and duplicate keys with their lines.

The line of a mapping entry is the line of its *key* (where a user looks for
the field name, even when the value is a block on the following lines); the
line of a sequence item is where the item starts. Every failure — syntax, an
unknown or malformed tag, a recursive alias, an alias bomb — comes back as a
`ConfigError`, never as a bare PyYAML or Python exception, so the CLI can
promise "file:line: field: message" and no traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from router.core.errors import ConfigError, ConfigIssue
from router.core.policy import FieldPath, format_path

__all__ = ["MAX_NODES", "YamlSource", "parse_yaml", "read_yaml"]

# Aliases are expanded into plain data; a few nested aliases can otherwise
# expand exponentially ("billion laughs"). Real policies have a few thousand nodes.
MAX_NODES = 100_000

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# YAML 1.1 reads `11:20` as the base-60 integer 680; in a timeline that is a clock time
# or a duration, never 680 seconds, so such plain scalars stay text (YAML 1.2 agrees).
_NUMBER_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}


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


class _TooLarge(Exception):
    """Alias expansion passed MAX_NODES; unwinds the recursion to one issue."""


@dataclass(slots=True)
class _Builder:
    """Turns a composed node graph into plain data, collecting issues instead of raising."""

    out: YamlSource
    issues: list[ConfigIssue] = field(default_factory=list)
    active: set[int] = field(default_factory=set)
    count: int = 0
    loader: yaml.SafeLoader = field(default_factory=lambda: yaml.SafeLoader(""))

    def issue(
        self, node: yaml.Node, path: FieldPath, message: str, line: int | None = None
    ) -> None:
        self.issues.append(
            ConfigIssue(
                file=self.out.source,
                line=node.start_mark.line + 1 if line is None else line,
                field=format_path(path),
                message=message,
            )
        )

    def build(self, node: yaml.Node, path: FieldPath, line: int | None = None) -> Any:
        """Plain data for `node` at `path`; `line` overrides where the path is said to be."""
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge
        self.out.lines[path] = node.start_mark.line + 1 if line is None else line
        if id(node) in self.active:
            message = "recursive alias (an anchor that contains itself)"
            self.issue(node, path, message, self.out.lines[path])
            return None
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            expected = _MAP_TAG if isinstance(node, yaml.MappingNode) else _SEQ_TAG
            if node.tag != expected:
                self.issue(node, path, f"unsupported YAML tag {node.tag!r}")
                return None
            self.active.add(id(node))
            try:
                if isinstance(node, yaml.MappingNode):
                    return self.mapping(node, path)
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            finally:
                self.active.discard(id(node))
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: FieldPath) -> Any:
        if node.tag in _NUMBER_TAGS and isinstance(node.value, str) and ":" in node.value:
            return node.value
        try:
            return self.loader.construct_object(node)
        except yaml.MarkedYAMLError as error:
            self.issue(node, path, f"YAML: {error.problem or error.context or 'bad value'}")
        except Exception as error:  # PyYAML raises plain errors on malformed tagged scalars
            self.issue(node, path, f"YAML: cannot read value tagged {node.tag!r} ({error})")
        # A failed construction leaves the node marked "in progress"; a second alias to
        # it would then be misreported as recursive.
        self.loader.recursive_objects.pop(node, None)
        return None

    def mapping(self, node: yaml.MappingNode, path: FieldPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        merged_lines: dict[FieldPath, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self.merge(value_node, path, merged, merged_lines)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.issue(key_node, path, "mapping keys must be plain scalars")
                continue
            key = self.scalar(key_node, path)
            key = key if isinstance(key, str) else str(key)
            if key in result:
                self.issue(
                    key_node,
                    (*path, key),
                    "duplicate key (an earlier value would be silently lost)",
                )
            result[key] = self.build(value_node, (*path, key), key_node.start_mark.line + 1)
        # YAML merge keys (`<<: *defaults`): explicit keys win, wherever they appear.
        inherited = {key for key in merged if key not in result}
        for key in inherited:
            result[key] = merged[key]
        depth = len(path)
        for sub, line in merged_lines.items():
            if sub[depth] in inherited:
                self.out.lines.setdefault(sub, line)
        return result

    def merge(
        self,
        value_node: yaml.Node,
        path: FieldPath,
        merged: dict[str, Any],
        merged_lines: dict[FieldPath, int],
    ) -> None:
        """Collect the entries of `<<: *a` or `<<: [*a, *b]` (earlier sources win)."""
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode) or source.tag != _MAP_TAG:
                self.issue(source, path, "a merge key '<<' needs a mapping or a list of mappings")
                continue
            if id(source) in self.active:
                self.issue(source, path, "recursive alias (an anchor that contains itself)")
                continue
            # Lines go to a scratch map first: only inherited keys may claim a path.
            scratch = YamlSource(source=self.out.source, data=None)
            inner = _Builder(out=scratch, active=self.active, count=self.count, loader=self.loader)
            self.active.add(id(source))
            try:
                data = inner.mapping(source, path)
            finally:
                self.active.discard(id(source))
            self.count = inner.count
            self.issues.extend(inner.issues)
            depth = len(path)
            for key, value in data.items():
                if key in merged:
                    continue
                merged[key] = value
                for sub, line in scratch.lines.items():
                    if len(sub) > depth and sub[depth] == key:
                        merged_lines.setdefault(sub, line)


def _syntax_message(error: yaml.MarkedYAMLError) -> str:
    """PyYAML splits messages into context and problem; a user needs both in one line."""
    parts = [part for part in (error.context, error.problem) if part]
    return ", ".join(parts) if parts else "invalid YAML"


def _too_deep(source: str) -> ConfigError:
    return ConfigError(
        [ConfigIssue(file=source, line=None, field="", message="YAML is nested too deeply")]
    )


def parse_yaml(text: str, *, source: str) -> YamlSource:
    """Parse one YAML document; raise `ConfigError` with the line on any problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = None if mark is None else mark.line + 1
        raise ConfigError(
            [
                ConfigIssue(
                    file=source,
                    line=line,
                    field="",
                    message=f"YAML syntax: {_syntax_message(error)}",
                )
            ]
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(
            [ConfigIssue(file=source, line=None, field="", message=f"YAML: {error}")]
        ) from None
    except RecursionError:
        raise _too_deep(source) from None
    out = YamlSource(source=source, data=None)
    if node is None:
        # An empty file (or one with only comments) is still "at" its first line.
        out.lines[()] = 1
        return out
    builder = _Builder(out=out)
    try:
        out.data = builder.build(node, ())
    except RecursionError:
        raise _too_deep(source) from None
    except _TooLarge:
        raise ConfigError(
            [
                ConfigIssue(
                    file=source,
                    line=None,
                    field="",
                    message=f"YAML expands to more than {MAX_NODES} values (nested aliases?)",
                )
            ]
        ) from None
    if builder.issues:
        raise ConfigError(builder.issues)
    return out


def read_yaml(path: Path) -> YamlSource:
    """Read and parse a config file; an unreadable file is a `ConfigError` like any other."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            [ConfigIssue(file=str(path), line=None, field="", message=f"cannot read: {error}")]
        ) from None
    return parse_yaml(text, source=str(path))
