"""Section rows spooled to disk as JSON arrays, one per line: a report's detail
rows never sit in memory, whatever the period's size."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from ..regulators import SECTION_COLUMNS


class Spool:
    """Rows of one section, written to a file as JSON arrays, one per line."""

    def __init__(self, directory: Path, name: str):
        self.name = name
        self.columns = SECTION_COLUMNS[name]
        self.path = directory / f"{name}.jsonl"
        self._fh: TextIO | None = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        self.count = 0

    def write(self, row: list[Any]) -> None:
        assert self._fh is not None
        self._fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
        self._fh.write("\n")
        self.count += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def lines(self, limit: int | None = None) -> Iterator[str]:
        """The rows as JSON array texts (no newline)."""
        self.close()
        with open(self.path, encoding="utf-8") as fh:
            for n, line in enumerate(fh):
                if limit is not None and n >= limit:
                    return
                yield line.rstrip("\n")

    def rows(self, limit: int | None = None) -> Iterator[list[Any]]:
        for line in self.lines(limit):
            yield json.loads(line)
