"""A benchmark corpus of real-shaped Synthea bundles, made from the shared Synthea run.

    .venv/bin/python benchmarks/corpus.py --gb 1 --out /tmp/fhirflow-corpus-1g
    .venv/bin/python benchmarks/corpus.py --gb 1 --out /tmp/c-ndjson --format ndjson

Copies of the shared run's patient bundles with every patient-level UUID rewritten per copy
(file names too), so each copy is a distinct set of patients; the run-level Organization,
Location and Practitioner bundles are copied once and keep their ids, so every copy's
conditional references still resolve. The output is a flat Synthea-style `fhir/` folder that
`fhirflow run --from-dir` ingests. `--format ndjson` converts it to a FHIR Bulk Data export
(one file per resource type, `Type/id` references) with the test helper that the equivalence
test uses. Nothing here is committed: corpora are made where `--out` says.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "synthea" / "synthea-2024-04" / "fhir"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# The yardstick both bench_load.py and bench_pipeline.py measure fhirflow against: DuckDB's
# own load of the same files into one JSON column, in a fresh database file, as its own
# process (`python -c YARDSTICK <database> <glob> bundles|ndjson`). Bundles: one JSON value
# per file (`read_text` -> `::json`); NDJSON: one per line (`read_ndjson_objects`). Prints
# its own seconds and peak RSS (VmHWM) as one JSON line.
YARDSTICK = r"""
import duckdb, json, sys, time
from pathlib import Path
con = duckdb.connect(sys.argv[1])
t = time.perf_counter()
if sys.argv[3] == "bundles":
    con.execute("create table raw_files as select filename, content::json as doc "
                "from read_text($glob)", {"glob": sys.argv[2]})
else:
    con.execute("create table raw_lines as select json as doc "
                "from read_ndjson_objects($glob)", {"glob": sys.argv[2]})
con.close()
hwm = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM")]
print(json.dumps({"seconds": time.perf_counter() - t,
                  "peak_rss_mb": int(hwm[0].split()[1]) / 1024}))
"""


def run_level(sample: Path) -> list[Path]:
    return sorted(p for p in sample.glob("*.json") if "Information" in p.name)


def patient_bundles(sample: Path) -> list[Path]:
    return sorted(p for p in sample.glob("*.json") if "Information" not in p.name)


def make_corpus(out: Path, target_bytes: int, *, first_copy: int = 0,
                with_run_level: bool = True, sample: Path = SAMPLE) -> tuple[int, int]:
    """Copies `first_copy`, `first_copy + 1`, ... of the sample's patients until
    `target_bytes` are written; returns (files, bytes). Deterministic for given arguments."""
    out.mkdir(parents=True, exist_ok=True)
    keep: set[str] = set()
    files = written = 0
    for path in run_level(sample):
        keep.update(UUID.findall(path.read_text()))
        if with_run_level:
            shutil.copy(path, out / path.name)
            files += 1
            written += path.stat().st_size
    texts = [(p.name, p.read_text()) for p in patient_bundles(sample)]
    copy = first_copy
    while written < target_bytes:
        suffix = f"{copy:012x}"

        def rewrite(match: re.Match[str], suffix: str = suffix) -> str:
            value = match.group(0)
            return value if value in keep else value[:24] + suffix

        for name, text in texts:
            body = UUID.sub(rewrite, text).encode()
            (out / UUID.sub(rewrite, name)).write_bytes(body)
            files += 1
            written += len(body)
            if written >= target_bytes:
                break
        copy += 1
    return files, written


def copies_for(target_bytes: int, sample: Path = SAMPLE) -> int:
    per_copy = sum(p.stat().st_size for p in patient_bundles(sample))
    return max(1, -(-target_bytes // per_copy))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--first-copy", type=int, default=0)
    parser.add_argument("--no-run-level", action="store_true")
    parser.add_argument("--format", choices=["bundles", "ndjson", "ndjson.gz"],
                        default="bundles")
    args = parser.parse_args()
    if not SAMPLE.is_dir():
        sys.exit(f"the shared Synthea sample is missing: {SAMPLE}")
    started = time.perf_counter()
    if args.format == "bundles":
        files, written = make_corpus(args.out, int(args.gb * 1e9), first_copy=args.first_copy,
                                     with_run_level=not args.no_run_level)
    else:
        sys.path.insert(0, str(REPO / "tests"))
        from _bulk import bundles_to_ndjson

        with tempfile.TemporaryDirectory(prefix="fhirflow-corpus-") as tmp:
            make_corpus(Path(tmp), int(args.gb * 1e9), first_copy=args.first_copy,
                        with_run_level=not args.no_run_level)
            made = bundles_to_ndjson(sorted(Path(tmp).glob("*.json")), args.out,
                                     gzip=args.format == "ndjson.gz")
        files, written = len(made), sum(p.stat().st_size for p in made)
    print(f"{files} files, {written / 1e6:,.0f} MB in {args.out} "
          f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
