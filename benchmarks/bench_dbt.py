"""Benchmark: the dbt project on DuckDB over >= 1 GB of Synthea bundles.

Makes N copies of the shared Synthea 2024-04 patient bundles with every patient-level UUID
rewritten per copy (so ids are unique per copy; the run-level Organization/Location/
Practitioner ids are kept, so references still resolve), lands, uploads and loads them, then
times:

1. yardstick: DuckDB's own single parse pass over the same files
   (`read_text` + `json_array_length(json_extract(content, '$.entry'))`);
2. `dbt run` full build of all models (staging, intermediate, marts);
3. `dbt run` incremental build after adding 1% more bundles.

Usage: .venv/bin/python benchmarks/bench_dbt.py [--gb 1.0] [--work /tmp/fhirflow-bench]
Prints seconds and MB/s per step.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import time
from pathlib import Path

import duckdb

from fhirflow.config import load_settings
from fhirflow.pipeline import land, load, upload
from fhirflow.transform import run_dbt

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "synthea" / "synthea-2024-04" / "fhir"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def run_level_ids(sample: Path) -> set[str]:
    keep: set[str] = set()
    for path in sample.glob("*Information*.json"):
        keep.update(UUID.findall(path.read_text()))
    return keep


def make_copies(sample: Path, out: Path, first: int, count: int, keep: set[str]) -> int:
    """Write copies first..first+count-1 of the patient bundles; returns bytes written."""
    written = 0
    patients = [p for p in sample.glob("*.json") if "Information" not in p.name]
    texts = {p: p.read_text() for p in patients}
    for i in range(first, first + count):
        suffix = f"{i:012x}"

        def rewrite(match: re.Match[str], suffix: str = suffix) -> str:
            value = match.group(0)
            return value if value in keep else value[:24] + suffix

        for path, text in texts.items():
            new = UUID.sub(rewrite, text)
            name = UUID.sub(rewrite, path.name).replace(".json", f"_c{i}.json")
            target = out / name
            target.write_text(new)
            written += len(new.encode())
    return written


def yardstick(files_glob: str) -> tuple[float, int]:
    con = duckdb.connect()
    started = time.perf_counter()
    entries = con.execute(
        f"select sum(json_array_length(json_extract(content, '$.entry'))) "
        f"from read_text('{files_glob}')"
    ).fetchone()[0]
    return time.perf_counter() - started, int(entries or 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/fhirflow-bench-dbt"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    src = args.work / "synthea" / "fhir"
    src.mkdir(parents=True)
    keep = run_level_ids(SAMPLE)
    for path in SAMPLE.glob("*Information*.json"):
        shutil.copy(path, src / path.name)
    per_copy = sum(p.stat().st_size for p in SAMPLE.glob("*.json") if "Information" not in p.name)
    copies = max(1, int(args.gb * 1e9 / per_copy + 0.999))
    t = time.perf_counter()
    total = make_copies(SAMPLE, src, 0, copies, keep)
    print(f"made {copies} copies: {total / 1e6:,.0f} MB in {time.perf_counter() - t:.0f} s")

    for name in list(os.environ):
        if name.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_")):
            del os.environ[name]
    settings = load_settings(home=args.work / "home")
    quiet = lambda _m: None  # noqa: E731
    t = time.perf_counter()
    land(settings, src, quiet)
    upload(settings, quiet)
    load(settings, quiet)
    print(f"land+upload+load: {time.perf_counter() - t:.0f} s")

    ys, entries = yardstick(str(src / "*.json"))
    print(f"yardstick DuckDB parse pass: {ys:.1f} s, {total / 1e6 / ys:,.0f} MB/s, "
          f"{entries:,} entries")

    assert run_dbt(settings, "seed").success
    full = run_dbt(settings, "run")
    assert full.success, full.failures
    per_layer = ", ".join(f"{k} {v.seconds:.0f}s" for k, v in full.layers.items())
    print(f"dbt full build: {full.seconds:.1f} s, {total / 1e6 / full.seconds:,.1f} MB/s "
          f"({per_layer})")

    more = src.parent / "more"
    more.mkdir()
    for path in SAMPLE.glob("*Information*.json"):
        shutil.copy(path, more / path.name)
    extra_copies = max(1, round(copies * 0.01))
    extra = make_copies(SAMPLE, more, copies, extra_copies, keep)
    land(settings, more, quiet)
    upload(settings, quiet)
    load(settings, quiet)
    inc = run_dbt(settings, "run")
    assert inc.success, inc.failures
    per_layer = ", ".join(f"{k} {v.seconds:.0f}s" for k, v in inc.layers.items())
    print(f"dbt incremental build (+{extra / 1e6:,.0f} MB, {extra_copies} copies): "
          f"{inc.seconds:.1f} s, {extra / 1e6 / inc.seconds:,.1f} MB/s of new bundles "
          f"({per_layer})")


if __name__ == "__main__":
    main()
