"""Exceptions that carry a user-facing, one-line message.

Every error a user can cause is a ``RigsizeError``: the CLI prints its message on one
line and exits 2; the HTTP API (later) answers 4xx. Messages are looked up in the
message catalog (``rigsize.messages``) by key so that they can be shown in English or
Chinese; ``str(err)`` is the English text.
"""

from __future__ import annotations


class RigsizeError(Exception):
    """A problem with the user's input, explained in one line.

    ``key`` names an entry of ``rigsize.messages.MESSAGES``; ``params`` fill its
    placeholders.  Subclasses only group errors by concept.
    """

    def __init__(self, key: str, /, **params: object) -> None:
        self.key = key
        self.params = params
        super().__init__(self.render("en"))

    def render(self, lang: str = "en") -> str:
        from rigsize.messages import render

        return render(self.key, lang, **self.params)


class ModelError(RigsizeError):
    """The model could not be read or is not supported."""


class HardwareError(RigsizeError):
    """An unknown GPU or a malformed GPU description."""


class FormatError(RigsizeError):
    """An unknown or unsupported weight/KV format."""


class PlanError(RigsizeError):
    """A parallel layout that cannot run (e.g. tp does not divide the heads)."""


class InputError(RigsizeError):
    """A malformed option value (number, choice, range)."""
