"""A configuration problem: where it is and what was expected."""

from __future__ import annotations

import difflib
import pathlib
from collections.abc import Iterable
from dataclasses import dataclass, replace

from ivr.config.yamlsource import Mark, Path, format_path


@dataclass(frozen=True, order=True)
class Problem:
    file: str  # relative to the configuration directory, e.g. "flows/main.yaml"
    line: int  # 1-based; 0 when the problem concerns the whole file
    column: int  # 1-based; 0 when the problem concerns the whole file
    message: str  # "<dotted path>: what is wrong (expected ...)"
    # Worth fixing, yet the configuration works: `ivr check` shows it and still passes.
    warning: bool = False

    def __str__(self) -> str:
        message = f"warning: {self.message}" if self.warning else self.message
        if self.line <= 0:
            return f"{self.file}: {message}"
        return f"{self.file}:{self.line}:{self.column}: {message}"

    def from_folder(self, config_dir: pathlib.Path) -> str:
        """As `str`, the file named as from where the command runs (`config_dir` as given),
        so that an editor started there opens it at the line."""
        return str(replace(self, file=str(config_dir / self.file)))

    @classmethod
    def at(cls, mark: Mark, path: Path, message: str, *, warning: bool = False) -> Problem:
        where = format_path(path)
        return cls(mark.file, mark.line, mark.column, f"{where}: {message}" if where else message, warning)

    @classmethod
    def whole_file(cls, file: str, message: str) -> Problem:
        return cls(file, 0, 0, message)


def one_of(choices: Iterable[str], given: str | None = None, limit: int = 20) -> str:
    """`expected one of: a, b, c` (with a `did you mean` when one is close to `given`)."""
    names = sorted(set(choices))
    if not names:
        return "none are defined"
    shown = ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
    text = f"expected one of: {shown}"
    if given is not None:
        close = difflib.get_close_matches(given, names, n=1, cutoff=0.6)
        if close:
            text = f"did you mean {close[0]!r}? {text}"
    return text
