"""The exceptions aipolicy raises.

AipolicyError
├── PolicyError        a policy, catalogue or list file does not load;
│                      ``.problems`` holds every problem found
├── EventLogError      the event log cannot be written
└── EditError          a policy edit is refused (invalid result, nothing to change,
                       the file is locked); the file is left untouched
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a policy file, located as FILE:LINE:COL (1-based)."""

    file: str
    line: int
    column: int
    code: str
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message} [{self.code}]"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
        }


class AipolicyError(Exception):
    """Base class of every error aipolicy raises on purpose."""


class PolicyError(AipolicyError):
    """A policy (or the catalogue or a list it references) failed to load."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        super().__init__("\n".join(str(p) for p in errors or self.problems))


class EventLogError(AipolicyError):
    """The event log could not be opened or written."""


class EditError(AipolicyError):
    """A policy edit was refused; the policy file is unchanged."""
