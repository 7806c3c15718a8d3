"""A queue's wrap-up code tree (routing.yaml `queues.<name>.wrap_up.codes`): the leaves an agent
can pick, as the paths they are stored under ("billing/refund/approved"), and their labels.

Pure: the agent desktop shows `leaves`, checks a pick with `is_leaf`, shows a stored code with
`label_path`; `ivr check` reports `tree_problems`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from routing.config import WrapUpCode

SEPARATOR = "/"  # between the codes of a stored path
SHOWN_SEPARATOR = " › "  # between the labels of a path as shown
MAX_DEPTH = 4  # levels: deeper is more clicks than an agent makes after every call


@dataclass(frozen=True)
class Leaf:
    path: str  # the stored code, e.g. "billing/refund/approved"
    labels: tuple[str, ...]  # each level's label in one language, root first

    @property
    def label(self) -> str:
        """"Billing › Refund › Approved"."""
        return SHOWN_SEPARATOR.join(self.labels)


def label_of(node: WrapUpCode, language: str) -> str:
    """The node's label in `language`, else its code."""
    return node.label.get(language) or node.code


def leaves(tree: Sequence[WrapUpCode], language: str) -> list[Leaf]:
    """Every leaf in the tree's order (depth first), with its path and labels in `language`."""
    return [Leaf(SEPARATOR.join(n.code for n in chain), tuple(label_of(n, language) for n in chain))
            for chain in _chains(tree, ())]


def _chains(tree: Sequence[WrapUpCode], above: tuple[WrapUpCode, ...]) -> Iterator[tuple[WrapUpCode, ...]]:
    for node in tree:
        chain = (*above, node)
        if node.children:
            yield from _chains(node.children, chain)
        else:
            yield chain


def nodes_at(tree: Sequence[WrapUpCode], path: str) -> tuple[WrapUpCode, ...] | None:
    """The nodes from the root down to `path` (a stored code); None when the tree has no such path."""
    chain: list[WrapUpCode] = []
    level = tree
    for code in path.split(SEPARATOR):
        node = next((n for n in level if n.code == code), None)
        if node is None:
            return None
        chain.append(node)
        level = node.children
    return tuple(chain)


def is_leaf(tree: Sequence[WrapUpCode], path: str) -> bool:
    """True when `path` names a leaf of the tree: a code an agent may pick."""
    chain = nodes_at(tree, path)
    return chain is not None and not chain[-1].children


def label_path(tree: Sequence[WrapUpCode], path: str, language: str) -> str:
    """A stored code as shown: "Billing › Refund › Approved". A code no longer in the tree (the
    tree was edited since) is shown as stored."""
    chain = nodes_at(tree, path)
    if chain is None:
        return path
    return SHOWN_SEPARATOR.join(label_of(node, language) for node in chain)


# --- what `ivr check` reports ------------------------------------------------------------------

Where = tuple[str | int, ...]  # a place below `codes`: (0, "children", 1, "code")


def tree_problems(tree: Sequence[WrapUpCode]) -> list[tuple[Where, str]]:
    """(place below `codes`, message) for every mistake in the tree: an empty code, one with
    "/" or white space, a code twice among siblings, a node with no leaf under it, a path
    deeper than MAX_DEPTH."""
    out: list[tuple[Where, str]] = []
    if not tree:
        out.append(((), "no codes (expected at least one code to pick)"))
    _check_level(tree, (), 1, out)
    return out


def _check_level(level: Sequence[WrapUpCode], where: Where, depth: int, out: list[tuple[Where, str]]) -> None:
    seen: dict[str, int] = {}
    for i, node in enumerate(level):
        place: Where = (*where, i)
        code = node.code
        if not code.strip():
            out.append(((*place, "code"), "empty code (expected a word, e.g. refund)"))
        elif SEPARATOR in code or any(ch.isspace() for ch in code):
            out.append(((*place, "code"), f"invalid code {code!r} (expected no '/' and no spaces: '/' separates "
                                          "the levels of a stored code, e.g. billing/refund)"))
        elif code in seen:
            out.append(((*place, "code"), f"duplicate code {code!r} (also entry {seen[code] + 1} of this list; expected "
                                          "each code once among its siblings: a stored code would be ambiguous)"))
        else:
            seen[code] = i
        if "children" in node.model_fields_set and not node.children:
            out.append(((*place, "children"), f"code {code!r} has no leaf under it (expected children to pick "
                                              "from, or no `children` at all: then the code itself is picked)"))
        if depth > MAX_DEPTH:
            out.append(((*place, "code"), f"code {code!r} is at depth {depth} (expected at most {MAX_DEPTH} levels)"))
            continue  # its children are deeper still: one problem per branch
        _check_level(node.children, (*place, "children"), depth + 1, out)


def languages_of(tree: Sequence[WrapUpCode]) -> Iterator[tuple[Where, str]]:
    """(place of a label, its language) for every label in the tree."""
    def walk(level: Sequence[WrapUpCode], where: Where) -> Iterator[tuple[Where, str]]:
        for i, node in enumerate(level):
            for language in node.label:
                yield (*where, i, "label", language), language
            yield from walk(node.children, (*where, i, "children"))

    return walk(tree, ())
