"""Errors a user can meet. The CLI prints them as one line and exits non-zero."""


class FhirflowError(Exception):
    """An error with a message fit for the user; exit code 1."""

    exit_code = 1


class ConfigError(FhirflowError):
    """A bad setting or argument; exit code 2."""

    exit_code = 2
