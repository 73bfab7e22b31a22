"""The battery's figures (events acknowledged, kills, restarts, payloads tried,
schemathesis cases) are printed at the end of the run, whatever -q or -s say."""

from __future__ import annotations

from typing import Any

FIGURES: list[str] = []


def report(line: str) -> None:
    """A figure for the end of the run (and for the test's own output)."""
    print(line)
    FIGURES.append(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("battery figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
