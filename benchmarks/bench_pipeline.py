"""End to end: `fhirflow run --from-dir` against DuckDB's own raw load of the same files.

    .venv/bin/python benchmarks/bench_pipeline.py                      # 1 GB, 1 repeat
    .venv/bin/python benchmarks/bench_pipeline.py --sizes-gb 1 3 --repeats 3
    .venv/bin/python benchmarks/bench_pipeline.py --format ndjson      # a Bulk Data export

For each size: a corpus made by `corpus.py` (copies of the shared Synthea run, fresh patient
ids per copy; not committed, made under --work and reused), then, in one run:

1. the yardstick: DuckDB's own load of the files into one JSON column
   (`create table ... as select filename, content::json from read_text(...)`; for NDJSON,
   `read_ndjson_objects`, one row per line) in a fresh database file, as its own process;
2. `fhirflow run --from-dir` on a fresh FHIRFLOW_HOME (land, upload, load, dbt build of every
   model and test, on the embedded defaults), as one process: wall time, and peak RSS per
   stage, sampled from /proc every 50 ms and attributed to the stage the command announced
   last on stderr (the process's VmHWM is the whole command's peak);
3. +1%: new patients worth 1% of the corpus, then `fhirflow run --from-dir` on them against
   the same home; its time as a share of the full run's;
4. the floor: `fhirflow transform` over an empty RAW (a fresh home, `fhirflow load` with
   nothing to load, one `fhirflow transform` to build the empty models and keep dbt's
   partial parse, then the one measured): what one build of every model and test costs
   with no data at all, which every run pays, the +1% run included. Beside the ratio it
   shows the best ratio a run could reach if its dbt stage cost only that (the yardstick's
   time over the floor) and the floor as a share of the full run (the least a +1% run can
   take).

Prints a table of medians; `--json` also writes every run's figures. `--env NAME=VALUE`
sets a variable for every fhirflow command (A/B a setting: `--env FHIRFLOW_DBT_THREADS=2`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))
from corpus import SAMPLE, YARDSTICK, make_corpus  # noqa: E402

FHIRFLOW = Path(sys.executable).with_name("fhirflow")
# The stage a line of `fhirflow run`'s stderr starts.
STAGE_MARKS = (("landing", "land"), ("uploading", "upload"), ("loading", "load"),
               ("running dbt", "dbt"))
@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    stage_rss_mb: dict[str, float] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)


def _memory_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of a running process, in MB."""
    try:
        fields = dict(line.split(":", 1)
                      for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, ValueError, KeyError):
        return None


def measured(cmd: list[str], env: dict[str, str]) -> Run:
    """Run cmd; wall time, peak RSS (its VmHWM) and per-stage peak RSS (VmRSS samples)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, cwd=REPO)
    stage = ["start"]
    marks: dict[str, float] = {"start": started}
    peaks: dict[str, float] = {}
    tail: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line)
            del tail[:-40]
            for word, name in STAGE_MARKS:
                if word in line:
                    stage[0] = name
                    marks[name] = time.perf_counter()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    hwm = 0.0
    while proc.poll() is None:
        sample = _memory_mb(proc.pid)
        if sample is not None:
            peaks[stage[0]] = max(peaks.get(stage[0], 0.0), sample[0])
            hwm = max(hwm, sample[1])
        time.sleep(0.05)
    reader.join()
    ended = time.perf_counter()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{''.join(tail)}")
    names = [n for n in marks if n != "start"]
    seconds = {n: (marks[names[i + 1]] if i + 1 < len(names) else ended) - marks[n]
               for i, n in enumerate(names)}
    peak = max(hwm, *peaks.values()) if peaks else hwm
    stage_rss = {k: round(v) for k, v in peaks.items() if k != "start"}
    return Run(ended - started, round(peak), stage_rss,
               {k: round(v, 1) for k, v in seconds.items()})


def corpus(work: Path, gb: float, fmt: str) -> tuple[Path, int]:
    folder = work / f"corpus-{gb:g}g-{fmt}"
    done = folder / ".complete"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        if fmt == "bundles":
            make_corpus(folder, int(gb * 1e9))
        else:
            from _bulk import bundles_to_ndjson

            plain = work / f"corpus-{gb:g}g-bundles"
            corpus(work, gb, "bundles")
            bundles_to_ndjson(sorted(plain.glob("*.json")), folder, gzip=fmt == "ndjson.gz")
        done.touch()
    size = sum(p.stat().st_size for p in folder.iterdir() if not p.name.startswith("."))
    return folder, size


# Set by --env: variables every fhirflow command of the run gets (a setting under test).
EXTRA_ENV: dict[str, str] = {}


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_"))}
    env.update(EXTRA_ENV)
    env["FHIRFLOW_HOME"] = str(home)
    return env


def dbt_elapsed(home: Path) -> float | None:
    """dbt's own elapsed time of the home's last build (run_results.json)."""
    path = home / "state" / "dbt" / "target" / "run_results.json"
    try:
        return round(float(json.loads(path.read_text())["elapsed_time"]), 2)
    except (OSError, ValueError, KeyError):
        return None


def floor_run(scratch: Path) -> dict[str, object]:
    """`fhirflow transform` over an empty RAW, after one that built the empty models."""
    home = scratch / "floor"
    measured([str(FHIRFLOW), "load"], env_for(home))
    measured([str(FHIRFLOW), "transform"], env_for(home))
    floor = measured([str(FHIRFLOW), "transform"], env_for(home))
    out = asdict(floor)
    out["dbt_elapsed"] = dbt_elapsed(home)
    shutil.rmtree(home, ignore_errors=True)
    return out


def one_run(work: Path, src: Path, size: int, fmt: str) -> dict[str, object]:
    scratch = work / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    pattern = "*.ndjson*" if fmt != "bundles" else "*.json"
    yard = measured([sys.executable, "-c", YARDSTICK, str(scratch / "yard.duckdb"),
                     str(src / pattern), "bundles" if fmt == "bundles" else "ndjson"],
                    env_for(scratch))
    (scratch / "yard.duckdb").unlink()
    load_average = os.getloadavg()[0]
    floor = floor_run(scratch)
    home = scratch / "home"
    full = measured([str(FHIRFLOW), "run", "--from-dir", str(src)], env_for(home))
    full_dbt = dbt_elapsed(home)
    more = scratch / "more"
    make_corpus(more, max(1, size // 100), first_copy=10_000, with_run_level=False)
    if fmt != "bundles":
        from _bulk import bundles_to_ndjson

        bulk = scratch / "more-ndjson"
        bundles_to_ndjson(sorted(more.glob("*.json")), bulk, gzip=fmt == "ndjson.gz")
        more = bulk
    inc = measured([str(FHIRFLOW), "run", "--from-dir", str(more)], env_for(home))
    inc_dbt = dbt_elapsed(home)
    reached = _patients_reached(home / "warehouse.duckdb")
    disk = sum(p.stat().st_size for p in home.rglob("*") if p.is_file())
    shutil.rmtree(scratch, ignore_errors=True)
    return {"yardstick": asdict(yard), "floor": floor,
            "full": {**asdict(full), "dbt_elapsed": full_dbt},
            "incremental": {**asdict(inc), "dbt_elapsed": inc_dbt}, "home_bytes": disk,
            "patients": reached,
            "load_average": [load_average, round(os.getloadavg()[0], 2)]}


def _patients_reached(warehouse: Path) -> dict[str, int]:
    """After the +1% run: patients in RAW and in the marts (the new ones must be there)."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        raw, marts = con.execute(
            "select (select count(distinct resource_id) from raw.fhir_resources "
            "        where resource_type = 'Patient'), "
            "       (select count(*) from marts.dim_patients)").fetchone()
    finally:
        con.close()
    return {"raw": int(raw), "marts": int(marts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-gb", type=float, nargs="+", default=[1.0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--format", choices=["bundles", "ndjson", "ndjson.gz"],
                        default="bundles")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fhirflow-bench-pipeline"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a variable for every fhirflow command (repeatable)")
    args = parser.parse_args()
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            sys.exit(f"--env {item!r}: give NAME=VALUE")
        EXTRA_ENV[name] = value
    if not SAMPLE.is_dir():
        sys.exit(f"the shared Synthea sample is missing: {SAMPLE}")
    everything: dict[str, list[dict[str, object]]] = {}
    print("| input | MB | yardstick MB/s | run MB/s | ratio | run s (dbt) | peak RSS MB "
          "(land / upload / load / dbt) | +1% s (dbt) | +1% / full | floor s (dbt) | "
          "ratio at the floor | floor / full | home on disk MB | load average |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for gb in args.sizes_gb:
        src, size = corpus(args.work, gb, args.format)
        runs = []
        for _ in range(args.repeats):
            runs.append(one_run(args.work, src, size, args.format))
            print(f"  run: {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
        everything[f"{gb:g}"] = runs
        mb = size / 1e6

        def med(path: tuple[str, ...], runs: list[dict[str, object]] = runs) -> float:
            values = []
            for r in runs:
                value: object = r
                for part in path:
                    value = value.get(part) if isinstance(value, dict) else None
                if value is not None:
                    values.append(float(value))  # type: ignore[arg-type]
            return statistics.median(values) if values else float("nan")

        yard = med(("yardstick", "seconds"))
        full = med(("full", "seconds"))
        inc = med(("incremental", "seconds"))
        stages = " / ".join(f"{med(('full', 'stage_rss_mb', s)):,.0f}"
                            for s in ("land", "upload", "load", "dbt"))
        floor = med(("floor", "seconds"))
        # The machine's load average before and after each run (medians): a busy machine's
        # figures compare only within their run.
        loads = "-".join(
            f"{statistics.median(float(r['load_average'][i]) for r in runs):.1f}"  # type: ignore[index]
            for i in (0, 1))
        print(f"| {gb:g} GB {args.format} | {mb:,.0f} | {mb / yard:,.0f} | {mb / full:,.1f} | "
              f"{yard / full:.2f} | {full:.1f} ({med(('full', 'dbt_elapsed')):.1f}) | "
              f"{med(('full', 'peak_rss_mb')):,.0f} ({stages}) | "
              f"{inc:.1f} ({med(('incremental', 'dbt_elapsed')):.1f}) | {inc / full:.0%} | "
              f"{floor:.1f} ({med(('floor', 'dbt_elapsed')):.1f}) | {yard / floor:.2f} | "
              f"{floor / full:.0%} | {med(('home_bytes',)) / 1e6:,.0f} | {loads} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
