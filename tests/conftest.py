"""Shared fixtures: a fresh FHIRFLOW_HOME per test, and the shared real Synthea sample."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fhirflow.config import Settings, load_settings

try:
    import fakesnow

    # `fakesnow.server()` runs `import fakesnow.server` inside itself, which rebinds the
    # package attribute from that function to the submodule, so a second call in the same
    # process fails ("'module' object is not callable"). Keep the function, taken here
    # before any test has called it.
    _FAKESNOW_SERVER: Callable[..., Any] | None = fakesnow.server
except ImportError:  # pragma: no cover - fakesnow is a dev dependency
    _FAKESNOW_SERVER = None

REPO = Path(__file__).resolve().parents[1]
SHARED_SAMPLE = REPO.parent / "shared" / "synthea" / "synthea-2024-04"


@pytest.fixture
def synthea_sample() -> Path:
    """The real Synthea 2024-04 run (FHIR + CSV) beside the repository, read-only."""
    if not (SHARED_SAMPLE / "fhir").is_dir():
        pytest.skip(f"real Synthea sample not found at {SHARED_SAMPLE} (../shared is absent)")
    return SHARED_SAMPLE


@pytest.fixture
def synthea_fhir(synthea_sample: Path) -> Path:
    return synthea_sample / "fhir"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No FHIRFLOW_*/AWS_*/SNOWFLAKE_* variables from the developer's shell leak in."""
    import os

    for name in list(os.environ):
        if name.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_")):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def settings(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Settings:
    """Embedded-default settings with FHIRFLOW_HOME in a temporary folder."""
    return load_settings(home=tmp_path / "home")


@pytest.fixture(scope="session")
def fakesnow_server() -> Callable[..., Any]:
    """fakesnow's `server()` context manager: a Snowflake-compatible server on 127.0.0.1."""
    if _FAKESNOW_SERVER is None:
        pytest.skip("fakesnow is not installed")
    return _FAKESNOW_SERVER
