"""The package's own error types."""

from __future__ import annotations


class UsageError(ValueError):
    """A value or a combination of settings that the package cannot run with, said in one line
    naming the value and what is allowed.

    A ``ValueError``, so code that catches ``ValueError`` catches it too; the command line turns
    it, like every ``ValueError``, into one line on stderr and exit status 2.
    """
