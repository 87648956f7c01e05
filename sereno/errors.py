"""The base of the errors a user can cause, each turned into a one-line message by the CLI
(or a 4xx answer by the service). Each stage defines its own beside the code that raises it:
`RulesError` in `rules.rulefmt`, `ConfigError` in `notify.config`, `StoreError` in
`state.store`, `BodyError` in `events.body`, and so on."""

from __future__ import annotations


class SerenoError(Exception):
    """A problem with something the user gave us: a file, a record, a rule."""


class RefusedFile(SerenoError):
    """A file of the user's (rules, notification config) refused as a whole; carries every
    problem found, one per line."""

    what = "file"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
