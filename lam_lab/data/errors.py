"""Errors for bad input: each names the file, the frame and the field at fault."""

from __future__ import annotations


class DataError(ValueError):
    """A problem in input data, located by ``source`` (file), ``frame`` (index) and ``field``."""

    def __init__(self, message: str, *, source: str | None = None, frame: int | None = None, field: str | None = None):
        self.message = message
        self.source = None if source is None else str(source)
        self.frame = frame
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.source:
            where.append(f"file {self.source}")
        if self.frame is not None:
            where.append(f"frame {self.frame}")
        if self.field:
            where.append(f"field {self.field}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class UnknownSourceError(DataError):
    """A data source that is neither a built-in data set nor an existing file or folder."""


class ValidationError(DataError):
    """Several data problems at once (``problems`` holds each :class:`DataError`)."""

    def __init__(self, problems: list[DataError], source: str | None = None):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in {source or 'dataset'}"
        shown = "\n  ".join(str(p) for p in self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"{head}:\n  {shown}{more}")
        self.source = source
