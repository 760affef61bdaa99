"""Upload and load throughput and peak memory on a generated corpus of real Synthea bundles.

    .venv/bin/python benchmarks/bench_load.py                 # 0.5 GB and 1 GB, local + DuckDB
    .venv/bin/python benchmarks/bench_load.py --sizes-gb 1 2 --repeats 3

The corpus is made by copying the shared Synthea bundles with each patient's id rewritten
(file name and content), into a temporary folder that is removed afterwards. Each phase runs
in its own process so its peak RSS (VmHWM from /proc/self/status) is its own; memory is flat
when peak RSS does not grow with the corpus.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "synthea" / "synthea-2024-04" / "fhir"
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

PHASE = r"""
import json, sys, time
from pathlib import Path
from fhirflow.config import load_settings
from fhirflow.store import open_store
from fhirflow.warehouse import open_warehouse
from fhirflow.upload import upload_landing
from fhirflow.load import run_load

def vm_hwm_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
phase, home = sys.argv[1], sys.argv[2]
s = load_settings(home=home)
store = open_store(s)
t = time.perf_counter()
if phase == "upload":
    r = upload_landing(s.landing_dir, store, prefix=s.patients_prefix, state_dir=s.state_dir,
                       workers=s.upload_workers)
    out = {"files": r.uploaded, "bytes": r.bytes}
else:
    wh = open_warehouse(s)
    try:
        r = run_load(store, wh, prefix=s.patients_prefix, batch_size=s.load_batch_size,
                     max_file_bytes=s.max_file_bytes, fetch_workers=s.upload_workers)
    finally:
        wh.close()
    out = {"files": r.files_loaded, "bytes": r.bytes_loaded, "failed": r.files_failed}
out["seconds"] = time.perf_counter() - t
out["peak_rss_mb"] = vm_hwm_mb()
print(json.dumps(out))
"""


def make_corpus(landing: Path, target_bytes: int) -> tuple[int, int]:
    """Copies of the sample patients with fresh ids until target_bytes; (files, bytes)."""
    sources = sorted(p for p in SAMPLE.glob("*.json")
                     if not p.name.startswith(("hospital", "practitioner")))
    blobs = [(p.name, p.read_bytes()) for p in sources]
    files = total = 0
    while total < target_bytes:
        for name, data in blobs:
            match = UUID.search(name.encode())
            old = match.group(0) if match else None
            new = str(uuid.uuid4()).encode()
            body = data.replace(old, new) if old else data
            new_name = name.replace(old.decode(), new.decode()) if old else name
            folder = landing / new.decode()
            folder.mkdir(parents=True)
            (folder / new_name).write_bytes(body)
            files += 1
            total += len(body)
            if total >= target_bytes:
                break
    return files, total


def run_phase(phase: str, home: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", PHASE, phase, str(home)], check=True,
                          capture_output=True, text=True, cwd=REPO)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-gb", type=float, nargs="+", default=[0.5, 1.0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--tmp", type=Path, default=None, help="where to build the corpus")
    args = parser.parse_args()
    if not SAMPLE.is_dir():
        sys.exit(f"the shared Synthea sample is missing: {SAMPLE}")

    results: dict[float, dict[str, list[dict]]] = {}
    for size in args.sizes_gb:
        results[size] = {"upload": [], "load": []}
        for _ in range(args.repeats):
            root = Path(tempfile.mkdtemp(prefix="fhirflow-bench-", dir=args.tmp))
            try:
                t = time.perf_counter()
                files, total = make_corpus(root / "output" / "bundles", int(size * 1e9))
                print(f"corpus {size} GB: {files} files, {total / 1e6:,.0f} MB "
                      f"in {time.perf_counter() - t:.1f}s", file=sys.stderr)
                for phase in ("upload", "load"):
                    r = run_phase(phase, root)
                    print(f"  {phase}: {r}", file=sys.stderr)
                    results[size][phase].append(r)
            finally:
                shutil.rmtree(root, ignore_errors=True)

    print("| corpus | phase | files | MB | seconds | MB/s | files/s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for size, phases in results.items():
        for phase, runs in phases.items():
            sec = statistics.median(r["seconds"] for r in runs)
            mb = statistics.median(r["bytes"] for r in runs) / 1e6
            files = statistics.median(r["files"] for r in runs)
            rss = statistics.median(r["peak_rss_mb"] for r in runs)
            print(f"| {size:g} GB | {phase} | {files:,.0f} | {mb:,.0f} | {sec:.1f} | "
                  f"{mb / sec:,.0f} | {files / sec:,.1f} | {rss:,.0f} |")
    if len(results) >= 2:
        small, large = min(results), max(results)
        for phase in ("upload", "load"):
            a = statistics.median(r["peak_rss_mb"] for r in results[small][phase])
            b = statistics.median(r["peak_rss_mb"] for r in results[large][phase])
            print(f"peak RSS {phase}: {large:g} GB / {small:g} GB = {b / a:.2f}")


if __name__ == "__main__":
    main()
