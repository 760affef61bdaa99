"""Run every benchmark in this folder, one after another, and record what they print.

Each `bench_*.py` prints its own figures; this writes them, with the machine and the date,
to benchmarks/RESULTS.md so the README can quote one consistent run.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    only = set(sys.argv[1:])
    if only:
        scripts = [s for s in scripts if s.stem in only or s.stem.removeprefix("bench_") in only]
    header = (
        f"# Benchmark results\n\nRecorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by "
        f"`make bench` on {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}.\n"
    )
    sections = [header]
    failed = 0
    for script in scripts:
        print(f"== {script.name}", flush=True)
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr[-4000:] if proc.returncode else "")
        failed += proc.returncode != 0
        status = "" if proc.returncode == 0 else f" (exit code {proc.returncode})"
        sections.append(f"\n## {script.stem}{status}\n\n```\n{proc.stdout.strip()}\n```\n")
    (HERE / "RESULTS.md").write_text("".join(sections))
    print(f"wrote {HERE / 'RESULTS.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
