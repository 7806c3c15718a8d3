"""YAML to plain Python values, remembering where every value came from.

PyYAML's composer gives a node tree with marks; we build the values ourselves so that:

* every value (and every mapping key) keeps its file, line and column (1-based);
* a duplicate mapping key is an error at its second occurrence (PyYAML keeps the last one
  silently, so a menu with two `1:` options would lose one without a word);
* mapping keys are always strings, spelled as the admin wrote them: `1:` is the digit
  "1", `4008001234:` the hotline number, `on:` the string "on", `0700:` stays "0700";
* for every unquoted scalar that YAML 1.1 resolves to something else than a string
  (`yes`, `9`, `1.10`, `2026-10-01`), the source text is kept, so that the loader can give
  the string the admin meant where the schema wants a string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

PathKey = str | int
Path = tuple[PathKey, ...]


@dataclass(frozen=True, order=True)
class Mark:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    @classmethod
    def of(cls, file: str, mark: yaml.Mark | None) -> Mark:
        if mark is None:
            return cls(file, 1, 1)
        return cls(file, mark.line + 1, mark.column + 1)


@dataclass(frozen=True)
class SourceError:
    """A problem found while reading YAML (syntax, duplicate key, unsupported construct)."""

    mark: Mark
    path: Path
    message: str


@dataclass
class SourceMap:
    """Where each value of one YAML document came from."""

    file: str
    values: dict[Path, Mark] = field(default_factory=dict)
    keys: dict[Path, Mark] = field(default_factory=dict)
    # Unquoted scalars that YAML resolved to a non-string: path -> the text as written.
    plain_text: dict[Path, str] = field(default_factory=dict)

    def value(self, path: Path) -> Mark:
        """Where the value at `path` starts, or the nearest enclosing value that exists."""
        for n in range(len(path), -1, -1):
            mark = self.values.get(path[:n])
            if mark is not None:
                return mark
        return Mark(self.file, 1, 1)

    def key(self, path: Path) -> Mark:
        """Where the mapping key of the entry at `path` is written (else the value's mark)."""
        mark = self.keys.get(path)
        return mark if mark is not None else self.value(path)


@dataclass
class Document:
    file: str
    data: Any
    source: SourceMap
    errors: list[SourceError]


def format_path(path: Path) -> str:
    """`("nodes", "main-menu", "prompts", 0)` -> `nodes.main-menu.prompts[0]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.source = SourceMap(file)
        self.errors: list[SourceError] = []
        self._constructor = yaml.SafeLoader("")
        self._open: set[int] = set()

    def mark(self, node: Node) -> Mark:
        return Mark.of(self.file, node.start_mark)

    def build(self, node: Node, path: Path) -> Any:
        self.source.values[path] = self.mark(node)
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if id(node) in self._open:
            self.errors.append(SourceError(self.mark(node), path, "an alias refers to a value that contains it"))
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self.mapping(node, path)
        finally:
            self._open.discard(id(node))
        self.errors.append(SourceError(self.mark(node), path, "unsupported YAML node"))  # pragma: no cover
        return None  # pragma: no cover

    def scalar(self, node: ScalarNode, path: Path) -> Any:
        try:
            value = self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError):
            # e.g. 2026-02-30 looks like a date but is none: keep the text, the schema says why.
            return node.value
        if node.style is None and not isinstance(value, str) and value is not None:
            self.source.plain_text[path] = node.value
        return value

    def key_text(self, node: Node, path: Path) -> str | None:
        if not isinstance(node, ScalarNode):
            self.errors.append(
                SourceError(self.mark(node), path, "a mapping key must be a plain value (got a list or mapping)")
            )
            return None
        if node.tag == "tag:yaml.org,2002:merge" or (node.style is None and node.value == "<<"):
            self.errors.append(SourceError(self.mark(node), path, "merge keys (<<) are not supported; write the keys out"))
            return None
        # Plain keys are taken as written: `1:` is "1", `yes:` is "yes", `~:` is "~".
        return str(node.value)

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.key_text(key_node, path)
            if key is None:
                continue
            child = (*path, key)
            if key in out:
                first = self.source.keys[child]
                self.errors.append(
                    SourceError(
                        self.mark(key_node),
                        child,
                        f"duplicate key {key!r} (first at line {first.line}, column {first.column}; "
                        "expected each key once)",
                    )
                )
                continue
            self.source.keys[child] = self.mark(key_node)
            out[key] = self.build(value_node, child)
        return out


def parse(text: str, file: str) -> Document:
    """Parse one YAML document; `file` is the name used in marks (relative to the config dir)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{exc.context}, {problem}"
        return Document(file, None, SourceMap(file), [SourceError(Mark.of(file, mark), (), f"invalid YAML: {problem}")])
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML parse error is marked
        return Document(file, None, SourceMap(file), [SourceError(Mark(file, 1, 1), (), f"invalid YAML: {exc}")])
    if root is None:
        return Document(file, None, SourceMap(file), [])
    builder = _Builder(file)
    data = builder.build(root, ())
    return Document(file, data, builder.source, builder.errors)
