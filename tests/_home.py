"""A FHIRFLOW_HOME of its own for a module-scoped fixture (the function-scoped `clean_env`
fixture of conftest cannot serve those)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def isolated_home(home: Path, **env: str) -> Iterator[pytest.MonkeyPatch]:
    """FHIRFLOW_HOME=home and `env`, and no FHIRFLOW_/AWS_/SNOWFLAKE_ variable of the shell."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_")):
                mp.delenv(name)
        mp.setenv("FHIRFLOW_HOME", str(home))
        for name, value in env.items():
            mp.setenv(name, value)
        yield mp
