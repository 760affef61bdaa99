"""Runs the real Synthea jar and moves its output into the landing layout."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fhirflow.errors import ConfigError, FhirflowError
from fhirflow.landing import ingest_synthea_output

if TYPE_CHECKING:
    from fhirflow.generate import GenerateResult


def synthea_command(
    *,
    jar: Path,
    patients: int,
    seed: int,
    years_of_history: int,
    state: str,
    output_dir: Path,
    reference_date: dt.date | None = None,
    java: str = "java",
) -> list[str]:
    """The `java -jar` command line of one Synthea run (Synthea's documented CLI flags).

    -p population, -s seed, -cs clinician seed (so providers are stable too), -r reference date
    (YYYYMMDD), then exporter settings as --key=value overrides, and the state last.
    """
    cmd = [java, "-jar", str(jar), "-p", str(patients), "-s", str(seed), "-cs", str(seed)]
    if reference_date is not None:
        cmd += ["-r", reference_date.strftime("%Y%m%d")]
    cmd += [
        f"--exporter.years_of_history={years_of_history}",
        "--exporter.fhir.export=true",
        "--exporter.fhir.transaction_bundle=true",
        "--exporter.hospital.fhir.export=true",
        "--exporter.practitioner.fhir.export=true",
        "--exporter.csv.export=false",
        f"--exporter.baseDirectory={output_dir}",
        state,
    ]
    return cmd


def run_synthea(
    landing_root: Path,
    *,
    jar: Path,
    patients: int,
    seed: int,
    years_of_history: int,
    state: str,
    reference_date: dt.date | None = None,
    java: str = "java",
    workdir: Path | None = None,
) -> GenerateResult:
    """Run Synthea into a scratch folder, then move its bundles into the landing layout."""

    jar = Path(jar)
    if not jar.is_file():
        raise ConfigError(f"Synthea jar not found at {jar}; download synthea-with-dependencies.jar "
                          "and pass --synthea-jar PATH (or set SYNTHEA_JAR)")
    java_path = shutil.which(java)
    if java_path is None:
        raise FhirflowError(f"'{java}' was not found on PATH; "
                            "install a Java runtime (17+) to run Synthea, "
                            "or use the built-in simulator (--engine simulator)")
    started = time.perf_counter()
    scratch_parent = Path(workdir) if workdir else None
    if scratch_parent is not None:
        scratch_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="synthea-", dir=scratch_parent) as scratch:
        out = Path(scratch) / "output"
        cmd = synthea_command(jar=jar, patients=patients, seed=seed,
                              years_of_history=years_of_history,
                              state=state, output_dir=out, reference_date=reference_date,
                              java=java_path)
        proc = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise FhirflowError(f"Synthea exited with code {proc.returncode}: {tail[0]}")
        return ingest_output(out, landing_root, started)


def ingest_output(output_dir: Path, landing_root: Path,
                  started: float | None = None) -> GenerateResult:
    """Move a Synthea output folder (`<dir>/fhir/*.json` or `<dir>/*.json`) into the landing
    layout."""
    from fhirflow.generate import GenerateResult

    started = time.perf_counter() if started is None else started
    landing_root = Path(landing_root)
    ingested = ingest_synthea_output(Path(output_dir), landing_root, move=True)
    paths = sorted(p for p in landing_root.glob("*/*.json") if not p.name.startswith("."))
    return GenerateResult(patients=len(ingested.patients),
                          files=ingested.copied + ingested.unchanged,
                          bytes=ingested.bytes, seconds=time.perf_counter() - started, paths=paths)
