"""The errors a user can cause, each turned into a one-line message by the CLI."""

from __future__ import annotations


class SerenoError(Exception):
    """A problem with something the user gave us: a file, a record, a rule."""


class InputError(SerenoError):
    """An events input that cannot be read at all (missing, a directory, unreadable)."""


class RulesError(SerenoError):
    """A rules file that cannot be used; carries every problem found, one per line."""

    what = "rules file"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ConfigError(RulesError):
    """A notification config file that cannot be used (with the rules it is for)."""

    what = "config file"


class ConditionError(SerenoError):
    """A condition that could not be evaluated against one event (a type mismatch, say)."""


class StrictStop(SerenoError):
    """`--strict`: the first bad record stops the run."""
