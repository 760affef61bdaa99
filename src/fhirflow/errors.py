"""Errors a user can meet. The CLI prints them as one line and exits non-zero."""

import re


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


def _errno_advice(code: int | None) -> str:
    import errno

    return {
        errno.ENOSPC: "the disk is full: free space (or point FHIRFLOW_HOME at a larger disk) "
                      "and re-run",
        errno.EDQUOT: "the disk quota is exhausted: free space and re-run",
        errno.EROFS: "the filesystem is read-only: point FHIRFLOW_HOME at a writable folder",
        errno.EACCES: "permission denied: check the owner and mode of the folder",
        errno.EPERM: "the operation is not permitted (immutable or append-only file?): "
                     "check `lsattr` and the folder's permissions",
        errno.ENAMETOOLONG: "the name is too long for this filesystem",
    }.get(code or 0, "check the path and the disk, then re-run")


def os_error_line(exc: OSError, doing: str) -> str:
    """One line for a failed filesystem call: what we were doing, the system's words
    (`[Errno 28] No space left on device`), and what to do about it."""
    reason = exc.strerror or first_line(exc)
    return f"{doing} failed: {reason} ({_errno_advice(exc.errno)})"


class DiskError(FhirflowError):
    """A write to FHIRFLOW_HOME failed (disk full, read-only, permissions)."""


def is_disk_full(exc: BaseException) -> bool:
    import errno

    return isinstance(exc, OSError) and exc.errno in {errno.ENOSPC, errno.EDQUOT}


def file_advice(message: str) -> str:
    """What to do about a database file error, from the words of the message (DuckDB and
    SQLite report no errno): only a lock conflict is blamed on another process."""
    text = message.lower()
    if "no space left" in text or "disk is full" in text or "disk full" in text:
        return "the disk is full: free space (or point FHIRFLOW_HOME at a larger disk), re-run"
    if "disk i/o error" in text:
        return "the disk is full or failing: check free space (df) and re-run"
    if "lock" in text:
        return "DuckDB allows one writing process; is another fhirflow or dbt running?"
    if "read-only file system" in text:
        return "the filesystem is read-only: point FHIRFLOW_HOME at a writable folder"
    if "permission denied" in text or "not permitted" in text:
        return ("the file cannot be written: check its owner and mode, and `lsattr` for the "
                "immutable flag")
    if "not a valid duckdb" in text or "corrupt" in text or "invalid" in text:
        return "the file is not a usable DuckDB database: move it aside and re-run the load"
    return "check the file and the disk, then re-run"


_HEADER = re.compile(r"[A-Z][A-Za-z ]*(Error|Exception)")


def _meaningful_lines(exc: BaseException) -> list[str]:
    """The message's lines without generic headers ("Runtime Error", "Database Error")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return [line for line in lines if not _HEADER.fullmatch(line)]


def exception_chain(exc: BaseException, limit: int = 25) -> list[BaseException]:
    """The exception, then its causes (or contexts), outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < limit and all(current is not e for e in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def underlying_error(exc: BaseException, limit: int = 400) -> str:
    """One line for a wrapped library error (dbt's `Runtime Error` around a driver's): what
    the wrapper was doing, the first line of the first exception raised outside the
    wrapper's own package (the database driver's), and the operating system's reason
    beneath it, e.g. `Database error while listing schemas in database "SYNTHEA": 250001:
    Could not connect to Snowflake backend after 2 attempt(s).Aborting (Connection
    refused)`."""
    chain = exception_chain(exc)
    top_package = type(exc).__module__.split(".", 1)[0].split("_", 1)[0]
    parts: list[str] = []
    context = _meaningful_lines(exc)
    if context:
        parts.append(context[0])
    foreign = next((e for e in chain[1:]
                    if not type(e).__module__.split(".", 1)[0].startswith(top_package)), None)
    if foreign is not None:
        lines = _meaningful_lines(foreign)
        if lines and lines[0] not in parts:
            parts.append(lines[0])
    elif len(context) > 1:
        parts.append(context[-1])  # dbt nests causes as indented lines: the last is deepest
    text = ": ".join(parts)
    root = chain[-1]
    if isinstance(root, OSError) and root is not foreign and root is not exc:
        text += f" ({root.strerror or first_line(root)})"
    return (text or first_line(exc))[:limit]
