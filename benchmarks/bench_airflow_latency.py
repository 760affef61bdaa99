"""Benchmark: how long a generated patient takes to reach the marts under `make airflow`.

Starts the local stack exactly as `make airflow` does (its own AIRFLOW_HOME and FHIRFLOW_HOME
in a scratch folder, API server on 127.0.0.1 at a free port, the Asset-driven transform),
lets the generation DAG make patients, and follows them:

- generated at: when the patient's bundle appeared in landing (polled every 0.5 s);
- in the marts at: the end of the first successful `dbt_transform_fhir` run whose marts were
  built from a RAW load holding the patient's bundle (the run's `check_consistency` task of
  `dbt_run_marts` reports that load; the REST API is polled every second). The warehouse
  file itself is read only after the stack is stopped (DuckDB has one writer process; a
  reader beside it would fail the tasks), to check that every patient counted is in
  `marts.dim_patients`.

The stack is stopped by its process group id at the end. Prints per-patient latency, then
median and worst.

Usage: .venv/bin/python benchmarks/bench_airflow_latency.py [--minutes 8] [--work DIR]
       [--dbt-tasks model|layer]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return json.loads(resp.read())


def token(port: int) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/auth/token", method="GET")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["access_token"]


def get(port: int, path: str, jwt: str) -> dict:
    """The API's answer; {} for a 404 (the DAG not parsed yet, an XCom not pushed yet)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Authorization": f"Bearer {jwt}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return {}
        raise


def landed_patients(landing: Path, seen: dict[str, float]) -> None:
    if not landing.is_dir():
        return
    now = time.time()
    for entry in landing.iterdir():
        if entry.is_dir() and entry.name != "_run" and entry.name not in seen:
            seen[entry.name] = now


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / ".work" / "latency")
    parser.add_argument("--dbt-tasks", choices=("model", "layer"), default="model",
                        help="FHIRFLOW_DBT_TASKS of the stack: one task per dbt model "
                             "(the default) or per layer")
    args = parser.parse_args()
    # A TERM (timeout, Ctrl-C from a wrapper) still stops the stack in `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    port = free_port()
    airflow_home = args.work / "airflow"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FHIRFLOW_", "AIRFLOW", "AWS_", "SNOWFLAKE_"))}
    env["FHIRFLOW_DBT_TASKS"] = args.dbt_tasks  # `make airflow` passes it on to Airflow
    print(f"FHIRFLOW_DBT_TASKS={args.dbt_tasks}; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    log = open(args.work / "stack.log", "w")
    stack = subprocess.Popen(["make", "-C", str(REPO), "airflow", f"AIRFLOW_PORT={port}",
                              f"AIRFLOW_HOME={airflow_home}"],
                             env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    home = airflow_home / "fhirflow"
    landing = home / "output" / "bundles"
    seen: dict[str, float] = {}
    runs: dict[str, dict] = {}
    started = time.time()
    try:
        while True:
            try:
                api(port, "/api/v2/monitor/health")
                break
            except OSError as exc:
                if stack.poll() is not None or time.time() - started > 300:
                    raise SystemExit(f"stack did not start; see {args.work / 'stack.log'}") from exc
                time.sleep(1)
        print(f"stack up on 127.0.0.1:{port} in {time.time() - started:.0f} s")
        jwt = token(port)
        # The RAW load the marts were built from: the marts group's check per model, the
        # marts task itself per layer.
        marts_task = ("dbt_run_marts.check_consistency" if args.dbt_tasks == "model"
                      else "dbt_run_marts")
        deadline = time.time() + args.minutes * 60
        while time.time() < deadline:
            landed_patients(landing, seen)
            listed = get(port, "/api/v2/dags/dbt_transform_fhir/dagRuns?limit=100", jwt)
            for run in listed.get("dag_runs", []):
                if run["state"] == "success" and run["dag_run_id"] not in runs:
                    xcom = get(port, "/api/v2/dags/dbt_transform_fhir/dagRuns/"
                               f"{run['dag_run_id']}/taskInstances/{marts_task}"
                               "/xcomEntries/return_value", jwt).get("value")
                    if xcom is None:
                        continue
                    value = xcom if isinstance(xcom, dict) else json.loads(xcom)
                    runs[run["dag_run_id"]] = {"start": run["start_date"],
                                               "end": run["end_date"],
                                               "raw_load": value["raw_load"]}
            time.sleep(0.5)
    finally:
        closed = time.time()
        os.killpg(stack.pid, signal.SIGTERM)  # the stack's own process group, by its id
        try:
            stack.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
        log.close()

    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    keys = con.execute("select object_key, load_id from raw.fhir_bundles").fetchall()
    in_marts = {r[0] for r in con.execute("select patient_id from marts.dim_patients").fetchall()}
    con.close()
    load_of: dict[str, str] = {}
    for key, load_id in keys:
        for patient in seen:
            if patient in key:
                load_of[patient] = max(load_of.get(patient, ""), load_id)
    done = sorted(runs.values(), key=lambda r: r["end"])
    latencies = []
    waiting = []  # patients not in the marts when the window closed: at least this long
    for patient, at in sorted(seen.items(), key=lambda kv: kv[1]):
        load = load_of.get(patient)
        first = next((r for r in done if load and r["raw_load"] >= load), None)
        if first is None:
            waiting.append(closed - at)
            continue
        end = datetime.fromisoformat(first["end"].replace("Z", "+00:00")).timestamp()
        latencies.append(end - at)
        mark = "in dim_patients" if patient in in_marts else "NOT in dim_patients"
        print(f"{patient[:36]:36}  {end - at:6.1f} s  ({mark})")
    durations = [datetime.fromisoformat(r["end"].replace("Z", "+00:00")).timestamp()
                 - datetime.fromisoformat(r["start"].replace("Z", "+00:00")).timestamp()
                 for r in done]
    if durations:
        print(f"transform run (scheduler, LocalExecutor): median "
              f"{statistics.median(durations):.1f} s, worst {max(durations):.1f} s")
    print(f"transform runs: {len(runs)}; patients generated: {len(seen)}; reached the marts "
          f"within the window: {len(latencies)}")
    if latencies:
        print(f"latency: median {statistics.median(latencies):.1f} s, worst "
              f"{max(latencies):.1f} s, best {min(latencies):.1f} s")
    if waiting:
        # Counted apart rather than dropped: leaving them out would flatter the worst case.
        print(f"not in the marts when the window closed: {len(waiting)} patients, generated "
              f"up to {max(waiting):.1f} s before it closed")
    du = subprocess.run(["du", "-sm", str(home / "output"), str(home / "lake"),
                         str(home / "warehouse.duckdb")], capture_output=True, text=True)
    print("disk after the run (MB):", " ".join(du.stdout.split()))
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    sys.exit(0 if latencies else 1)


if __name__ == "__main__":
    main()
