"""Benchmark of the built-in simulator at 10 years of history.

Prints patients/s and MB/s (median of several runs, one process, one core) and the median
bundle size. Run: `python benchmarks/bench_generate.py [--patients N] [--runs R]`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from fhirflow.generate import generate_patients


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    rates, throughputs, sizes = [], [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
            result = generate_patients(Path(tmp), patients=args.patients, seed=args.seed + run,
                                       years_of_history=args.years)
            rates.append(result.patients / result.seconds)
            throughputs.append(result.bytes / result.seconds / 1e6)
            sizes += [p.stat().st_size for p in result.paths if p.parent.name != "_run"]
            print(f"run {run + 1}: {result.patients} patients in {result.seconds:.2f} s "
                  f"({rates[-1]:.1f} patients/s, {throughputs[-1]:.1f} MB/s)")
    print(f"\nyears of history       {args.years}")
    print(f"patients/s (median)    {statistics.median(rates):.1f}")
    print(f"MB/s (median)          {statistics.median(throughputs):.1f}")
    print(f"median bundle size     {statistics.median(sizes) / 1e6:.2f} MB")
    print(f"bundle size p10..p90   {statistics.quantiles(sizes, n=10)[0] / 1e6:.2f} .. "
          f"{statistics.quantiles(sizes, n=10)[-1] / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
