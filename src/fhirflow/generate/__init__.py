"""Synthea-compatible FHIR R4 patient generation, and the runner for the real Synthea jar.

`generate_patients` simulates patients in Python and writes Synthea-shaped bundles into the
landing layout (`<landing>/<patient_id>/<Given>_<Family>_<uuid>.json`, run-level
`hospitalInformation<seed>.json` / `practitionerInformation<seed>.json` under `_run/`), or
with `output_format="ndjson"` (`"ndjson.gz"`) the same resources as a FHIR Bulk Data export
(`<landing>/_bulk/<Type>.<seed>.ndjson[.gz]`, see ndjson.py).
Output is a pure function of the arguments: with `reference_date=None` the simulation ends
on DEFAULT_REFERENCE_DATE (a fixed date, never "today"), so the same arguments always give
byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from fhirflow.errors import ConfigError
from fhirflow.generate.bundles import encode_bundle
from fhirflow.generate.catalog import load_data
from fhirflow.generate.clock import epoch
from fhirflow.generate.modules import MODULE_NAMES
from fhirflow.generate.ndjson import FORMATS, BulkTarget, BulkWriter, OutputFormat
from fhirflow.generate.providers import build_network, hospital_bundle, practitioner_bundle
from fhirflow.generate.run import RunArguments, default_workers, merge_usage, run_chunks
from fhirflow.generate.synthea import run_synthea, synthea_command
from fhirflow.landing import landing_relpath, write_atomic

# The day Synthea's own reference sample was generated; any fixed date would do, what
# matters is that it never depends on the clock of the machine running the generator.
DEFAULT_REFERENCE_DATE = dt.date(2024, 4, 27)


@dataclass
class GenerateResult:
    patients: int
    files: int
    bytes: int
    seconds: float
    paths: list[Path] = field(default_factory=list)


def _resolve_state(state: str) -> str:
    states = load_data("geography")["states"]
    for name, info in states.items():
        if state.lower() in (name.lower(), info["abbreviation"].lower()):
            return name
    raise ConfigError(f"unknown state {state!r}; the simulator knows: {', '.join(sorted(states))}")


def _resolve_modules(modules: Collection[str] | None) -> frozenset[str]:
    if modules is None:
        return frozenset(MODULE_NAMES)
    unknown = sorted(set(modules) - set(MODULE_NAMES))
    if unknown:
        raise ConfigError(f"unknown module {unknown[0]!r}; "
                          f"the simulator has: {', '.join(MODULE_NAMES)}")
    return frozenset(modules)


def generate_patients(
    landing_root: Path,
    *,
    patients: int,
    seed: int = 42,
    years_of_history: int = 10,
    state: str = "Massachusetts",
    reference_date: dt.date | None = None,
    modules: Collection[str] | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    output_format: OutputFormat = "bundle",
) -> GenerateResult:
    """Simulate `patients` people and write their bundles into the landing folder.

    Patient i of a run is seeded from (seed, i), so runs with the same seed share their first
    patients; providers depend on the state only, so their ids are stable across runs.
    `modules` names the optional clinical modules that run (all of `MODULE_NAMES` by default),
    like Synthea's `-m` filter. `workers` processes share the work (default: the cores this
    process may use); the files are the same whatever their number. `output_format` is
    "bundle" (Synthea's files), "ndjson" or "ndjson.gz" (a Bulk Data export, ndjson.py).
    """
    if patients < 0:
        raise ConfigError("--patients must be zero or more")
    if years_of_history < 1:
        raise ConfigError("--years-of-history must be at least 1")
    if workers is not None and workers < 1:
        raise ConfigError("--workers must be at least 1")
    if output_format not in FORMATS:
        raise ConfigError(f"unknown --format {output_format!r}; use one of {', '.join(FORMATS)}")
    state_name = _resolve_state(state)
    chosen = _resolve_modules(modules)
    started = time.perf_counter()
    geo = load_data("geography")["states"][state_name]
    ref = reference_date or DEFAULT_REFERENCE_DATE
    arguments = RunArguments(
        landing_root=Path(landing_root), seed=seed, state=state_name,
        reference_t=epoch(ref, 12 * 3600 - geo["utc_offset"] * 3600), years=years_of_history,
        utc_offset=geo["utc_offset"], dst=geo["dst"], modules=chosen,
        bulk=(BulkTarget.for_run(Path(landing_root), seed, output_format == "ndjson.gz")
              if output_format != "bundle" else None),
    )
    writer = BulkWriter(arguments.bulk) if arguments.bulk is not None else None
    try:
        result = _generate(arguments, patients, workers, progress, writer)
    except BaseException:
        if writer is not None and arguments.bulk is not None:
            writer.abort()
            arguments.bulk.remove_parts()
        raise
    result.files = len(result.paths)
    result.seconds = time.perf_counter() - started
    return result


def _generate(arguments: RunArguments, patients: int, workers: int | None,
              progress: Callable[[int], None] | None,
              writer: BulkWriter | None) -> GenerateResult:
    chunks = []
    for chunk in run_chunks(arguments, patients,
                            default_workers() if workers is None else workers, progress):
        if writer is not None:
            writer.append(chunk.parts)
        chunks.append(chunk)
    result = GenerateResult(patients=patients, files=0, bytes=0, seconds=0.0)
    for chunk in chunks:
        result.paths += chunk.paths
        result.bytes += chunk.bytes
    state_name, seed = arguments.state, arguments.seed
    if patients:
        network = build_network(state_name)
        organizations = {org.id: org for org in network.organizations}
        clinicians = {clinician.id: clinician
                      for org in network.organizations for clinician in org.clinicians}
        used_orgs = sorted({key for chunk in chunks for key in chunk.organizations})
        used_clinicians = sorted({key for chunk in chunks for key in chunk.clinicians})
        usage = merge_usage(chunks)
        home = network.home_location_id if any(chunk.used_home for chunk in chunks) else None
        hospitals = hospital_bundle([organizations[key] for key in used_orgs], usage, home)
        practitioners = practitioner_bundle([clinicians[key] for key in used_clinicians], usage)
        if writer is not None:
            for path in writer.finish((hospitals, practitioners)):
                result.paths.append(path)
                result.bytes += path.stat().st_size
            return result
        for filename, bundle in ((f"hospitalInformation{seed}.json", hospitals),
                                 (f"practitionerInformation{seed}.json", practitioners)):
            target = arguments.landing_root / landing_relpath(filename, None)
            data = encode_bundle(bundle)
            write_atomic(target, data)
            result.paths.append(target)
            result.bytes += len(data)
    return result


__all__ = [
    "DEFAULT_REFERENCE_DATE",
    "FORMATS",
    "GenerateResult",
    "MODULE_NAMES",
    "OutputFormat",
    "default_workers",
    "generate_patients",
    "run_synthea",
    "synthea_command",
]
