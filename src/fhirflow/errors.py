"""Errors a user can meet. The CLI prints them as one line and exits non-zero."""


class FhirflowError(Exception):
    """An error with a message fit for the user; exit code 1."""

    exit_code = 1


class ConfigError(FhirflowError):
    """A bad setting or argument; exit code 2."""

    exit_code = 2


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type's name when it has none), cut to
    `limit` characters: what a one-line error shows of an underlying library's exception."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]
