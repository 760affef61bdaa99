"""dbt's progress while it builds: one numbered line per model, seed and test as dbt finishes
it, and per-layer wall time rather than the sum of the nodes' own times (issue 11, item 7)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests._home import isolated_home

from fhirflow import pipeline
from fhirflow.config import load_settings
from fhirflow.transform import summarise_run_results

LINE = re.compile(r"^(\d+)/(\d+) (OK|PASS|WARN|ERROR|FAIL|SKIP) "
                  r"(model|seed|test|unit_test|snapshot) \S+ \(\d+\.\d s\)$")


def test_one_line_per_node_as_dbt_finishes_it(tmp_path: Path) -> None:
    with isolated_home(tmp_path / "home"):
        settings = load_settings()
        pipeline.generate(settings, pipeline.GenerateOptions(2, 11, 1))
        pipeline.upload(settings)
        pipeline.load(settings)
        said: list[str] = []
        result = pipeline.transform(settings, said.append, layer="staging")
    assert result.success, result.failures
    lines = [line for line in said if LINE.match(line)]
    numbers = sorted(int(LINE.match(line).group(1)) for line in lines)
    totals = {int(LINE.match(line).group(2)) for line in lines}
    assert len(totals) == 1 and numbers == list(range(1, totals.pop() + 1)), said
    # every node dbt ran was reported, and only those
    assert len(lines) == len(result.statuses)
    assert any(" model stg_patients " in line for line in lines)
    assert any(" test " in line for line in lines)


def test_layer_seconds_are_wall_time_not_thread_time(tmp_path: Path) -> None:
    """Two staging models that ran side by side for 10 s each: the layer took 10 s, not 20."""
    def node(uid: str, start: str, end: str) -> dict:
        return {"unique_id": uid, "status": "success", "execution_time": 10.0,
                "timing": [{"name": "execute", "started_at": start, "completed_at": end}]}

    manifest = {"nodes": {uid: {"resource_type": "model", "fqn": ["fhirflow", "staging", name]}
                          for uid, name in (("model.fhirflow.a", "a"), ("model.fhirflow.b", "b"))}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "run_results.json").write_text(json.dumps({"results": [
        node("model.fhirflow.a", "2026-12-01T10:00:00.000000Z", "2026-12-01T10:00:10.000000Z"),
        node("model.fhirflow.b", "2026-12-01T10:00:00.500000Z", "2026-12-01T10:00:10.500000Z"),
    ]}))
    staging = summarise_run_results(tmp_path).layers["staging"]
    assert staging.thread_seconds == 20.0
    assert staging.seconds == 10.5
