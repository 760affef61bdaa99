"""`fhirflow status` reports how far the marts are behind RAW (key `freshness`)."""

from __future__ import annotations

import json
from pathlib import Path

from _helpers import clean_environ, run_cli


def _status(env: dict[str, str]) -> dict:
    proc = run_cli("status", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["freshness"]


def test_freshness_follows_loads_and_builds(tmp_path: Path) -> None:
    env = clean_environ(FHIRFLOW_HOME=str(tmp_path / "home"), FHIRFLOW_DBT_THREADS="2")
    for args in (["generate", "-p", "2", "--years-of-history", "2"], ["upload"], ["load"]):
        assert run_cli(*args, env=env).returncode == 0
    loaded = _status(env)
    # RAW has a load the marts have never been built from
    assert loaded["raw_load"] is not None and loaded["raw_loaded_at"].endswith("+00:00")
    assert loaded["marts_built_at"] is None and loaded["marts_load"] is None
    assert loaded["marts_behind_raw"] is True and loaded["loads_not_in_marts"] == 1

    assert run_cli("transform", env=env, timeout=600).returncode == 0
    built = _status(env)
    assert built["marts_load"] == built["raw_load"] == loaded["raw_load"]
    assert built["marts_behind_raw"] is False and built["loads_not_in_marts"] == 0
    assert built["marts_built_at"] >= built["raw_loaded_at"][:19]

    for args in (["generate", "-p", "1", "-s", "9", "--years-of-history", "2"], ["upload"],
                 ["load"]):
        assert run_cli(*args, env=env).returncode == 0
    behind = _status(env)
    assert behind["raw_load"] > built["raw_load"]
    assert behind["marts_load"] == built["raw_load"]
    assert behind["marts_behind_raw"] is True and behind["loads_not_in_marts"] == 1
    text = run_cli("status", env=env)
    assert "marts are behind RAW: 1 load not in the marts yet" in text.stderr


def test_source_freshness_of_an_empty_raw_passes(tmp_path: Path) -> None:
    """dbt reports max() of an empty RAW as 0001-01-01: that is "nothing loaded yet", not
    a RAW that stopped changing 2,000 years ago (the transform DAG's first run failed)."""
    import pytest

    from fhirflow import pipeline
    from fhirflow.config import load_settings
    from fhirflow.transform.freshness import source_freshness

    with pytest.MonkeyPatch.context() as mp:
        for name, value in clean_environ(FHIRFLOW_HOME=str(tmp_path / "home")).items():
            mp.setenv(name, value)
        settings = load_settings()
        pipeline.create_raw_tables(settings)
        found = source_freshness(settings, error_after_minutes=60)
    assert (found.status, found.max_loaded_at) == ("pass", None)
