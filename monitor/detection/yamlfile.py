"""YAML reading that remembers line numbers, so every rule problem can say file:line."""

from __future__ import annotations

from pathlib import Path

import yaml


class LineDict(dict):
    """A mapping from a YAML file; ``line`` is where it starts, ``key_lines`` per key."""

    line: int = 0
    key_lines: dict


class LineList(list):
    """A sequence from a YAML file; ``line`` is where it starts, ``item_lines`` per item."""

    line: int = 0
    item_lines: list


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


class YamlSyntaxError(Exception):
    def __init__(self, line: int | None, message: str):
        self.line = line
        super().__init__(message)


def load(path: Path):
    """Parse one YAML file into LineDict/LineList values. Raises YamlSyntaxError."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlSyntaxError(None, f"not UTF-8 text ({exc.reason})") from exc
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        message = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlSyntaxError(line, f"YAML syntax error: {message}") from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(None, f"YAML error: {exc}") from exc


def line_of(document, path) -> int | None:
    """The line of the deepest value along ``path`` (keys and indexes) in ``document``."""
    line = getattr(document, "line", None)
    node = document
    for step in path:
        if isinstance(node, LineDict) and step in node:
            line = node.key_lines.get(step, line)
            node = node[step]
        elif isinstance(node, LineList) and isinstance(step, int) and step < len(node):
            line = node.item_lines[step]
            node = node[step]
        else:
            break
    return line
