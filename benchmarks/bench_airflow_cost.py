"""Benchmark: what Airflow's transform DAG costs over the same `dbt build` from the CLI.

Generates one set of patients, and lands, uploads and loads it into two fresh homes. Then:

1. CLI: `fhirflow transform` (one `dbt build` of every model and test) in home A;
2. DAG: `dbt_transform_fhir` with `dag.test()` in home B (the load DAG ran there first, as
   the sensor waits for it), with one task per model (Cosmos, the default) and again with
   `FHIRFLOW_DBT_TASKS=layer`.

Each step runs in its own process (Airflow reads its configuration at import) and is timed
from outside: the DAG's figure includes the import of the DAG file and every task's work.
Repeats the whole comparison `--repeat` times and prints the medians and the ratio.

Usage: .venv/bin/python benchmarks/bench_airflow_cost.py [--patients 40] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOGICAL = "2026-11-25T12:00:00+00:00"

DAG_SCRIPT = """
import json, subprocess, sys, time
from datetime import datetime
subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True,
               capture_output=True)
from airflow.dag_processing.dagbag import DagBag
from airflow.models.pool import Pool
Pool.create_or_update_pool("fhirflow_warehouse", slots=1, description="", include_deferred=False)
when = datetime.fromisoformat(sys.argv[1])
bag = DagBag(sys.argv[2])
assert not bag.import_errors, bag.import_errors
run = bag.dags["s3_to_snowflake_load"].test(logical_date=when)
assert str(run.state) .endswith("success"), run.state
start = time.perf_counter()
bag = DagBag(sys.argv[2])  # the DAG file's import is part of a task's cost
run = bag.dags["dbt_transform_fhir"].test(logical_date=when)
print("SECONDS", time.perf_counter() - start, "STATE", run.state,
      "TASKS", len(run.get_task_instances()))
# Where the time went: each task's own duration (dag.test runs them one after another).
print("DURATIONS", json.dumps({ti.task_id: (ti.end_date - ti.start_date).total_seconds()
                               for ti in run.get_task_instances()
                               if ti.start_date and ti.end_date}))
"""


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FHIRFLOW_", "AIRFLOW", "AWS_", "SNOWFLAKE_"))}
    env.update(FHIRFLOW_HOME=str(home / "home"), AIRFLOW_HOME=str(home / "airflow"),
               # dag.test() serializes the DAG through the dags-folder bundle: it must exist
               AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
               AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__USAGE_DATA_COLLECTION__ENABLED="False",
               AIRFLOW__COSMOS__ENABLE_TELEMETRY="False", DO_NOT_TRACK="1",
               AIRFLOW__CORE__UNIT_TEST_MODE="False",
               AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
               FHIRFLOW_DBT_DOCS_DIR=str(home / "docs"), FHIRFLOW_TASK_RETRIES="0",
               FHIRFLOW_GENERATION_SCHEDULE="none", PYTHONPATH=str(REPO / "src"), **extra)
    return env


def cli(env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([str(BIN / "fhirflow"), *args], env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - start


def prepare(work: Path, source: Path, **extra: str) -> dict[str, str]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = env_for(work, **extra)
    landing = work / "home" / "output" / "bundles"
    shutil.copytree(source, landing)
    cli(env, "upload")
    return env


def dag_run(env: dict[str, str]) -> tuple[float, str, dict[str, float]]:
    proc = subprocess.run([sys.executable, "-c", DAG_SCRIPT, LOGICAL, str(REPO / "dags")],
                          env=env, capture_output=True, text=True)
    # dag.test() logs every task (dbt's own lines too) here: where to look for the time
    Path(env["AIRFLOW_HOME"], "dag_test.log").write_text(proc.stdout + proc.stderr)
    lines = proc.stdout.splitlines()
    line = next((x for x in lines if x.startswith("SECONDS")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"dag.test failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    parts = line.split()
    durations = json.loads(next(x for x in lines if x.startswith("DURATIONS")).split(" ", 1)[1])
    return float(parts[1]), " ".join(parts[2:]), durations


def breakdown(durations: dict[str, float]) -> str:
    """Seconds per top-level step (a Cosmos group's tasks summed), largest first."""
    steps: dict[str, float] = {}
    for task_id, seconds in durations.items():
        top = task_id.split(".")[0]
        steps[top] = steps.get(top, 0.0) + seconds
    return ", ".join(f"{k} {v:.1f}" for k, v in sorted(steps.items(), key=lambda kv: -kv[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / ".work" / "cost")
    parser.add_argument("--modes", default="model,layer",
                        help="FHIRFLOW_DBT_TASKS values to run the DAG with")
    args = parser.parse_args()
    modes = args.modes.split(",")
    source = args.work / "source"
    gen = env_for(args.work / "gen")
    shutil.rmtree(args.work, ignore_errors=True)
    cli(gen, "generate", "-p", str(args.patients), "-s", "11")
    shutil.copytree(args.work / "gen" / "home" / "output" / "bundles", source)
    mb = sum(p.stat().st_size for p in source.rglob("*.json")) / 1e6
    print(f"{args.patients} patients, {mb:.0f} MB of bundles")
    figures: dict[str, list[float]] = {"cli": [], **{mode: [] for mode in modes}}
    for i in range(args.repeat):
        env = prepare(args.work / "cli", source)
        cli(env, "load")
        figures["cli"].append(cli(env, "transform"))
        for mode in modes:
            env = prepare(args.work / mode, source, FHIRFLOW_DBT_TASKS=mode)
            seconds, state, durations = dag_run(env)
            (args.work / mode / "durations.json").write_text(json.dumps(durations, indent=1))
            figures[mode].append(seconds)
            print(f"run {i + 1}: DAG ({mode}) {seconds:.1f} s, {state}; tasks' own seconds: "
                  f"{breakdown(durations)}")
        print(f"run {i + 1}: CLI dbt build {figures['cli'][-1]:.1f} s; load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    base = statistics.median(figures["cli"])
    print(f"median CLI `fhirflow transform` (dbt build): {base:.1f} s")
    for mode in modes:
        m = statistics.median(figures[mode])
        print(f"median transform DAG, FHIRFLOW_DBT_TASKS={mode} (dag.test): {m:.1f} s, "
              f"{m / base:.2f}x the CLI")


if __name__ == "__main__":
    main()
