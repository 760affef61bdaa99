"""Benchmark of the built-in simulator, and its realism report.

Speed: the whole `fhirflow generate` command (interpreter start, imports, simulation, files
written, run-level bundles), timed from outside, median of several runs, at 1 and 2 worker
processes, 10 years of history. When the installed CLI has no `--workers` option yet, the same
run is timed as a fresh `python -c` process calling `generate_patients(workers=...)`, and the
line says so. The machine may be shared: the load average before and after is printed.

Realism: a generated population against the real Synthea run in ../shared (see
fhirflow.generate.realism), and the newer-build figures of issue 16.

Run: `python benchmarks/bench_generate.py [--patients N] [--runs R] [--realism-patients M]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fhirflow.generate import DEFAULT_REFERENCE_DATE, MODULE_NAMES, generate_patients, realism

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[1] / "shared" / "synthea" / "synthea-2024-04" / "fhir"
FHIRFLOW = Path(sys.executable).with_name("fhirflow")
NEWER_BUILDS = {"Device": 3.8, "ImagingStudy": 2.6, "SupplyDelivery": 15.7, "Medication": 3.0,
                "MedicationAdministration": 3.0, "Procedure": 111.6, "Observation": 175.8,
                "MedicationRequest": 13.4, "AllergyIntolerance": 0.6}


def _cli_has_workers() -> bool:
    shown = subprocess.run([str(FHIRFLOW), "generate", "--help"], capture_output=True, text=True)
    return "--workers" in shown.stdout


def _command(home: Path, patients: int, seed: int, workers: int, real_cli: bool) -> list[str]:
    if real_cli:
        return [str(FHIRFLOW), "generate", "--patients", str(patients), "--seed", str(seed),
                "--workers", str(workers)]
    code = ("from pathlib import Path; from fhirflow.generate import generate_patients; "
            f"generate_patients(Path({str(home / 'output' / 'bundles')!r}), "
            f"patients={patients}, seed={seed}, "
            f"workers={workers})")
    return [sys.executable, "-c", code]


def speed(patients: int, runs: int, seed: int) -> None:
    real_cli = _cli_has_workers()
    how = ("`fhirflow generate`" if real_cli
           else "a fresh `python -c` generate_patients() process (CLI lacks --workers)")
    print(f"whole command: {how}, {patients} patients, 10 years of history, median of {runs}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for workers in (1, 2):
        seconds, megabytes = [], 0.0
        for run in range(runs):
            with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
                home = Path(tmp)
                started = time.perf_counter()
                subprocess.run(_command(home, patients, seed + run, workers, real_cli), check=True,
                               capture_output=True, env={**os.environ, "FHIRFLOW_HOME": str(home)})
                seconds.append(time.perf_counter() - started)
                megabytes = sum(p.stat().st_size for p in home.rglob("*.json")) / 1e6
            print(f"  workers={workers} run {run + 1}: {seconds[-1]:.2f} s "
                  f"({patients / seconds[-1]:.1f} patients/s)")
        median = statistics.median(seconds)
        print(f"workers={workers}: {patients / median:.1f} patients/s, "
              f"{megabytes / median:.1f} MB/s "
              f"(median {median:.2f} s, {megabytes:.0f} MB)")
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def bundle_sizes(seed: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        result = generate_patients(Path(tmp), patients=100, seed=seed)
        sizes = [p.stat().st_size for p in result.paths if p.parent.name != "_run"]
    deciles = statistics.quantiles(sizes, n=10)
    print(f"median bundle size {statistics.median(sizes) / 1e6:.2f} MB "
          f"(p10..p90 {deciles[0] / 1e6:.2f} .. "
          f"{deciles[-1] / 1e6:.2f} MB)")


def realism_report(patients: int, seed: int) -> None:
    if not SAMPLE.is_dir():
        print(f"realism: skipped, no real Synthea run at {SAMPLE}")
        return
    with tempfile.TemporaryDirectory(prefix="bench-realism-") as tmp:
        root = Path(tmp)
        older = [name for name in MODULE_NAMES if name not in ("dental", "fall_risk")]
        generate_patients(root / "2024-04", patients=patients, seed=seed, modules=older)
        report = realism.compare(realism.summarise(root / "2024-04", DEFAULT_REFERENCE_DATE),
                                 realism.summarise(SAMPLE, dt.date(2024, 4, 27)))
        print("\nrealism against the shared Synthea 2024-04 run "
              f"(modules of that build: {', '.join(older)})")
        print(report.format())
        generate_patients(root / "all", patients=patients, seed=seed)
        population = realism.summarise(root / "all", DEFAULT_REFERENCE_DATE)
        shutil.rmtree(root)
    means, shares = population.mean_per_patient(), population.class_shares()
    print(f"\nall modules, {patients} patients, crude means against issue 16's newer-build figures")
    print(f"{'resource':28s} {'real':>8s} {'ours':>8s} {'ratio':>6s}")
    for kind, real in NEWER_BUILDS.items():
        print(f"{kind:28s} {real:8.1f} {means.get(kind, 0.0):8.1f} "
              f"{means.get(kind, 0.0) / real:6.2f}")
    print("classes: " + ", ".join(f"{code} {share:.1%}" for code, share in sorted(shares.items())))
    print("top 20 disorders: " + "; ".join(name for name, _ in population.top_disorders()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--realism-patients", type=int, default=400,
                        help="0 skips the realism report")
    args = parser.parse_args()
    speed(args.patients, args.runs, args.seed)
    bundle_sizes(args.seed)
    if args.realism_patients:
        realism_report(args.realism_patients, args.seed)


if __name__ == "__main__":
    main()
