"""Land, upload and load throughput, peak memory and disk, bundles beside NDJSON, against
DuckDB's own raw load of the same files in the same run.

    .venv/bin/python benchmarks/bench_load.py                      # 1 GB, bundles and NDJSON
    .venv/bin/python benchmarks/bench_load.py --sizes-gb 1 3 --formats bundles --repeats 3

The corpora come from `corpus.py` (copies of the shared Synthea run with fresh patient ids;
`--format ndjson`: the same patients as a Bulk Data export), made under --work and reused,
never committed. For each corpus and repeat, on a fresh FHIRFLOW_HOME:

1. the yardstick: DuckDB's own load of the files into one JSON column (`read_text` ->
   `::json` for bundles, `read_ndjson_objects` for NDJSON) into a fresh database file;
2. land (`ingest_synthea_output`, as `run --from-dir` does), upload (local store) and load
   (DuckDB), each in its own process so its peak RSS (VmHWM) is its own.

MB/s are of the input's bytes (the load reports inflated bytes for bundles and stored bytes
for NDJSON; the input is the one measure both share). Disk: the home's blocks on disk, each
inode counted once (as `du` does), split by folder, and the input and home together (a
landed file linked to its input takes no second copy). The load average of the machine is
printed beside each run: figures from a busy machine compare only within their run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))
from corpus import SAMPLE, YARDSTICK, make_corpus  # noqa: E402

PHASE = r"""
import json, sys, time
from pathlib import Path
from fhirflow.config import load_settings
from fhirflow.landing import ingest_synthea_output
from fhirflow.store import open_store
from fhirflow.warehouse import open_warehouse
from fhirflow.upload import upload_landing
from fhirflow.load import run_load

def vm_hwm_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
phase, home, source = sys.argv[1], sys.argv[2], sys.argv[3]
s = load_settings(home=home)
t = time.perf_counter()
if phase == "land":
    r = ingest_synthea_output(Path(source), s.landing_dir)
    out = {"files": r.copied}
elif phase == "upload":
    r = upload_landing(s.landing_dir, open_store(s), prefix=s.patients_prefix,
                       state_dir=s.state_dir, workers=s.upload_workers)
    out = {"files": r.uploaded}
else:
    wh = open_warehouse(s)
    try:
        r = run_load(open_store(s), wh, prefix=s.patients_prefix,
                     batch_size=s.load_batch_size, max_file_bytes=s.max_file_bytes,
                     fetch_workers=s.upload_workers)
    finally:
        wh.close()
    out = {"files": r.files_loaded, "failed": r.files_failed, "resources": r.entries_loaded}
out["seconds"] = time.perf_counter() - t
out["peak_rss_mb"] = vm_hwm_mb()
print(json.dumps(out))
"""


def corpus(work: Path, gb: float, fmt: str) -> tuple[Path, int]:
    folder = work / f"corpus-{gb:g}g-{fmt}"
    done = folder / ".complete"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        if fmt == "bundles":
            make_corpus(folder, int(gb * 1e9))
        else:
            from _bulk import bundles_to_ndjson

            plain, _ = corpus(work, gb, "bundles")
            bundles_to_ndjson(sorted(plain.glob("*.json")), folder)
        done.touch()
    size = sum(p.stat().st_size for p in folder.iterdir() if not p.name.startswith("."))
    return folder, size


def disk_bytes(*roots: Path) -> int:
    """Blocks on disk under the roots, each inode once (hard links are one file)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root in roots:
        paths = ([str(root)] if root.is_file() else
                 [os.path.join(d, n) for d, _dirs, names in os.walk(root) for n in names])
        for path in paths:
            info = os.lstat(path)
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512
    return total


def run_py(code: str, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_"))}
    proc = subprocess.run([sys.executable, "-c", code, *args], check=True,
                          capture_output=True, text=True, cwd=REPO, env=env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def one_run(work: Path, src: Path, fmt: str) -> dict:
    scratch = work / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    pattern = str(src / ("*.json" if fmt == "bundles" else "*.ndjson"))
    out: dict = {"load_average": os.getloadavg()[0]}
    out["yardstick"] = run_py(YARDSTICK, str(scratch / "yard.duckdb"), pattern, fmt)
    (scratch / "yard.duckdb").unlink()
    home = scratch / "home"
    for phase in ("land", "upload", "load"):
        out[phase] = run_py(PHASE, phase, str(home), str(src))
    out["disk"] = {name: disk_bytes(home / name) for name in ("output", "lake")}
    out["disk"]["warehouse"] = sum(disk_bytes(p) for p in home.glob("warehouse.duckdb*"))
    out["disk"]["home"] = disk_bytes(home)
    out["disk"]["input"] = disk_bytes(src)
    # What the home adds to the disk beyond the input (landed links take nothing).
    out["disk"]["input_and_home"] = disk_bytes(src, home)
    out["load_average_after"] = os.getloadavg()[0]
    shutil.rmtree(scratch, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-gb", type=float, nargs="+", default=[1.0])
    parser.add_argument("--formats", nargs="+", choices=["bundles", "ndjson"],
                        default=["bundles", "ndjson"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/fhirflow-bench-load"))
    args = parser.parse_args()
    if not SAMPLE.is_dir():
        sys.exit(f"the shared Synthea sample is missing: {SAMPLE}")
    rows = []
    for gb in args.sizes_gb:
        for fmt in args.formats:
            src, size = corpus(args.work, gb, fmt)
            runs = []
            for _ in range(args.repeats):
                runs.append(one_run(args.work, src, fmt))
                print(f"  {gb:g} GB {fmt}: {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
            rows.append((gb, fmt, size, runs))

    def med(runs: list[dict], *path: str) -> float:
        values = []
        for r in runs:
            for part in path:
                r = r[part]
            values.append(float(r))  # type: ignore[arg-type]
        return statistics.median(values)

    print("| input | MB in | yardstick MB/s | load MB/s | load / yardstick | land s | "
          "upload s | load s | peak RSS MB (yardstick / land / upload / load) | "
          "home on disk MB (landing + lake + warehouse) | home beyond the input MB | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for gb, fmt, size, runs in rows:
        mb = size / 1e6
        yard, load = med(runs, "yardstick", "seconds"), med(runs, "load", "seconds")
        rss = " / ".join(f"{med(runs, p, 'peak_rss_mb'):,.0f}"
                         for p in ("yardstick", "land", "upload", "load"))
        parts = " + ".join(f"{med(runs, 'disk', p) / 1e6:,.0f}"
                           for p in ("output", "lake", "warehouse"))
        print(f"| {gb:g} GB {fmt} | {mb:,.0f} | {mb / yard:,.0f} | {mb / load:,.0f} | "
              f"{yard / load:.2f} | {med(runs, 'land', 'seconds'):.1f} | "
              f"{med(runs, 'upload', 'seconds'):.1f} | {load:.1f} | {rss} | "
              f"{med(runs, 'disk', 'home') / 1e6:,.0f} ({parts}) | "
              f"{(med(runs, 'disk', 'input_and_home') - med(runs, 'disk', 'input')) / 1e6:,.0f} | "
              f"{med(runs, 'load_average'):.1f}-{med(runs, 'load_average_after'):.1f} |")


if __name__ == "__main__":
    main()
