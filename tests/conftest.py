"""Shared fixtures: a fresh FHIRFLOW_HOME per test, and the shared real Synthea sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirflow.config import Settings, load_settings

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
