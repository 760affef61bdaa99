"""The code passes its linters: ruff over the Python (rules in pyproject.toml), SQLFluff over
the dbt models (rules in .sqlfluff: lowercase, trailing commas, ...)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON_SOURCES = ("src", "tests", "dags", "benchmarks")


def test_python_passes_ruff() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
         *PYTHON_SOURCES],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    # Exit 1 lists problems; anything else (2: a bad configuration) is an error of its own.
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    problems = [line for line in proc.stdout.splitlines() if line.startswith(PYTHON_SOURCES)]
    assert proc.returncode == 0 and problems == [], "\n".join(problems[:80])


def test_dbt_models_pass_sqlfluff(tmp_path: Path) -> None:
    env = {**os.environ, "FHIRFLOW_DUCKDB_PATH": str(tmp_path / "lint.duckdb")}
    proc = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "dbt/models", "--nofail", "--format",
         "github-annotation-native"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    problems = [line for line in proc.stdout.splitlines() if line.startswith("::")]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert problems == [], "\n".join(problems[:50])
