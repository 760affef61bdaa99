"""The dbt models pass SQLFluff (rules in .sqlfluff: lowercase, trailing commas, ...)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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
