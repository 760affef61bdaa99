"""Benchmark: what Airflow's transform DAG costs over the same `dbt build` from the CLI.

Generates one set of patients and splits it in two halves. For the CLI and for each DAG
mode, a fresh home gets the first half landed, uploaded and loaded, and is transformed
("first run": dbt parses the project from scratch, Cosmos's caches are empty, `dbt deps`
and `dbt debug` run); then the second half is landed, uploaded and loaded, and it is
transformed again ("later run": what every scheduled run after the first costs).

- CLI: `fhirflow transform` (one `dbt build` of every model and test);
- DAG: `dbt_transform_fhir` with `dag.test()` (the load DAG ran first, as the sensor waits
  for it), with one task per model (Cosmos, the default) and `FHIRFLOW_DBT_TASKS=layer`.

Each step runs in its own process (Airflow reads its configuration at import) and is timed
from outside: the DAG's figure includes the import of the DAG files and every task's work,
which is more than the CLI does (`dbt source freshness`, `dbt docs generate`, the report);
the per-task seconds show each part. Each step's CPU seconds are printed beside its wall
time (the CLI's process from getrusage; the DAG's from the process's own clock around the
DagBag import and dag.test(), dbt running in it): on a shared machine they move far less
with the load than the wall times. dag.test() runs the tasks one after another in one
process: under a scheduler each task is its own process (and imports the DAG file), while
independent model tasks run side by side. Repeats the comparison `--repeat` times and prints
the medians and the ratios, with the load average (the machine may be shared).

Usage: .venv/bin/python benchmarks/bench_airflow_cost.py [--patients 40] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOGICAL = "2026-11-25T12:00:00+00:00"
LATER = "2026-11-25T12:10:00+00:00"

DAG_SCRIPT = """
import json, subprocess, sys, time
from datetime import datetime
if sys.argv[3] == "first":
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
start, cpu = time.perf_counter(), time.process_time()
bag = DagBag(sys.argv[2])  # the DAG file's import is part of a task's cost
run = bag.dags["dbt_transform_fhir"].test(logical_date=when)
print("CPU", time.process_time() - cpu)  # dbt runs in this process: its CPU is counted
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
               # as `make airflow`: this home's own Cosmos cache, not the machine's /tmp/cosmos
               AIRFLOW__COSMOS__CACHE_DIR=str(home / "airflow" / "cosmos"),
               # as `make airflow`: the producer keeps its XCom backup in memory and writes
               # it to a Variable on failure, not after every push (--reliable-retry: Cosmos's
               # default, for comparison)
               AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY="False",
               AIRFLOW__CORE__UNIT_TEST_MODE="False",
               AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
               FHIRFLOW_DBT_DOCS_DIR=str(home / "docs"), FHIRFLOW_TASK_RETRIES="0",
               FHIRFLOW_GENERATION_SCHEDULE="none", PYTHONPATH=str(REPO / "src"))
    env.update(extra)
    return env


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children so far: on a shared
    machine a step's CPU moves far less with the load than its wall time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CPU: dict[str, float] = {}  # CPU seconds of the last timed step, by what it was


def cli(env: dict[str, str], *args: str) -> float:
    start, cpu = time.perf_counter(), children_cpu()
    subprocess.run([str(BIN / "fhirflow"), *args], env=env, check=True,
                   capture_output=True)
    CPU[args[0]] = children_cpu() - cpu
    return time.perf_counter() - start


def split(source: Path) -> tuple[list[Path], list[Path]]:
    """The patients' folders in two halves; the run's shared bundles go with the first."""
    folders = sorted(p for p in source.iterdir() if p.is_dir())
    patients = [p for p in folders if not p.name.startswith("_")]
    half = len(patients) // 2
    return [p for p in folders if p.name.startswith("_")] + patients[:half], patients[half:]


def land(env: dict[str, str], folders: list[Path]) -> None:
    landing = Path(env["FHIRFLOW_HOME"]) / "output" / "bundles"
    for folder in folders:
        shutil.copytree(folder, landing / folder.name)
    cli(env, "upload")


def prepare(work: Path, folders: list[Path], **extra: str) -> dict[str, str]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = env_for(work, **extra)
    land(env, folders)
    return env


def dag_run(env: dict[str, str], when: str, phase: str) -> tuple[float, str, dict[str, float]]:
    proc = subprocess.run([sys.executable, "-c", DAG_SCRIPT, when, str(REPO / "dags"), phase],
                          env=env, capture_output=True, text=True)
    # dag.test() logs every task (dbt's own lines too) here: where to look for the time
    Path(env["AIRFLOW_HOME"], f"dag_test.{phase}.log").write_text(proc.stdout + proc.stderr)
    lines = proc.stdout.splitlines()
    line = next((x for x in lines if x.startswith("SECONDS")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"dag.test failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    parts = line.split()
    CPU["dag"] = float(next(x for x in lines if x.startswith("CPU ")).split()[1])
    durations = json.loads(next(x for x in lines if x.startswith("DURATIONS")).split(" ", 1)[1])
    return float(parts[1]), " ".join(parts[2:]), durations


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


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
    parser.add_argument("--reliable-retry", action="store_true",
                        help="Cosmos's default: the producer writes its whole XCom backup to "
                             "an Airflow Variable after every XCom it pushes")
    args = parser.parse_args()
    args.work = args.work.resolve()  # AIRFLOW_HOME under it: Airflow wants it absolute
    modes = args.modes.split(",")
    source = args.work / "source"
    gen = env_for(args.work / "gen")
    shutil.rmtree(args.work, ignore_errors=True)
    cli(gen, "generate", "-p", str(args.patients), "-s", "11")
    shutil.copytree(args.work / "gen" / "home" / "output" / "bundles", source)
    mb = sum(p.stat().st_size for p in source.rglob("*.json")) / 1e6
    first, later = split(source)
    print(f"{args.patients} patients, {mb:.0f} MB of bundles; {len(first)} folders in the first "
          f"load, {len(later)} in the later one")
    phases = ("first", "later")
    figures: dict[tuple[str, str], list[float]] = {
        (who, phase): [] for who in ("cli", *modes) for phase in phases}
    cpus: dict[tuple[str, str], list[float]] = {key: [] for key in figures}
    for i in range(args.repeat):
        env = prepare(args.work / "cli", first)
        cli(env, "load")
        figures["cli", "first"].append(cli(env, "transform"))
        cpus["cli", "first"].append(CPU["transform"])
        land(env, later)
        cli(env, "load")
        figures["cli", "later"].append(cli(env, "transform"))
        cpus["cli", "later"].append(CPU["transform"])
        print(f"run {i + 1}: CLI dbt build: first {figures['cli', 'first'][-1]:.1f} s "
              f"({cpus['cli', 'first'][-1]:.1f} CPU s), later {figures['cli', 'later'][-1]:.1f} s "
              f"({cpus['cli', 'later'][-1]:.1f} CPU s); load average {load_average()}")
        for mode in modes:
            env = prepare(args.work / mode, first, FHIRFLOW_DBT_TASKS=mode,
                          AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY=str(
                              args.reliable_retry))
            for phase, when in zip(phases, (LOGICAL, LATER), strict=True):
                if phase == "later":
                    land(env, later)
                seconds, state, durations = dag_run(env, when, phase)
                (args.work / mode / f"durations.{phase}.json").write_text(
                    json.dumps(durations, indent=1))
                figures[mode, phase].append(seconds)
                cpus[mode, phase].append(CPU["dag"])
                print(f"run {i + 1}: DAG ({mode}, {phase}) {seconds:.1f} s "
                      f"({CPU['dag']:.1f} CPU s), {state}; load "
                      f"average {load_average()}; tasks' own seconds: {breakdown(durations)}")
    for phase in phases:
        base = statistics.median(figures["cli", phase])
        base_cpu = statistics.median(cpus["cli", phase])
        print(f"{phase} run: median CLI `fhirflow transform` (dbt build) {base:.1f} s, "
              f"{base_cpu:.1f} CPU s")
        for mode in modes:
            m = statistics.median(figures[mode, phase])
            c = statistics.median(cpus[mode, phase])
            print(f"{phase} run: median transform DAG, FHIRFLOW_DBT_TASKS={mode} (dag.test) "
                  f"{m:.1f} s, {m / base:.2f}x the CLI; {c:.1f} CPU s, {c / base_cpu:.2f}x "
                  "the CLI's CPU")

if __name__ == "__main__":
    main()
