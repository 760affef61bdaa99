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
