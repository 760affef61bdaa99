"""Synthea-compatible FHIR R4 patient generation, and the runner for the real Synthea jar.

`generate_patients` simulates patients in Python and writes Synthea-shaped bundles into the
landing layout (`<landing>/<patient_id>/<Given>_<Family>_<uuid>.json`, run-level
`hospitalInformation<seed>.json` / `practitionerInformation<seed>.json` under `_run/`).
Output is a pure function of the arguments: with `reference_date=None` the simulation ends
on DEFAULT_REFERENCE_DATE (a fixed date, never "today"), so the same arguments always give
byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from fhirflow.errors import ConfigError
from fhirflow.generate.catalog import Catalog, load_data
from fhirflow.generate.clock import LocalClock, epoch
from fhirflow.generate.life import RunContext
from fhirflow.generate.modules import MODULE_NAMES
from fhirflow.generate.providers import build_network, hospital_bundle, practitioner_bundle
from fhirflow.generate.simulate import simulate_patient
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
        raise ConfigError(f"unknown module {unknown[0]!r}; the simulator has: {', '.join(MODULE_NAMES)}")
    return frozenset(modules)


def encode_bundle(bundle: dict) -> bytes:
    """Compact JSON with one bundle entry per line: fast to write, easy to grep and diff."""
    head = {k: v for k, v in bundle.items() if k != "entry"}
    prefix = json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
    body = ",\n".join(dumps(e) for e in bundle["entry"])
    return f'{prefix},"entry":[\n{body}\n]}}\n'.encode()


def bundle_filename(given: list[str], family: str, patient_id: str) -> str:
    """Synthea's file name: every given name, the family name, then the patient id."""
    return "_".join([*given, family, patient_id]) + ".json"


def generate_patients(
    landing_root: Path,
    *,
    patients: int,
    seed: int = 42,
    years_of_history: int = 10,
    state: str = "Massachusetts",
    reference_date: dt.date | None = None,
    modules: Collection[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> GenerateResult:
    """Simulate `patients` people and write their bundles into the landing folder.

    Patient i of a run is seeded from (seed, i), so runs with the same seed share their first
    patients; providers depend on the state only, so their ids are stable across runs.
    `modules` names the optional clinical modules that run (all of `MODULE_NAMES` by default),
    like Synthea's `-m` filter.
    """
    if patients < 0:
        raise ConfigError("--patients must be zero or more")
    if years_of_history < 1:
        raise ConfigError("--years-of-history must be at least 1")
    state_name = _resolve_state(state)
    chosen = _resolve_modules(modules)
    started = time.perf_counter()
    geo = load_data("geography")["states"][state_name]
    ref = reference_date or DEFAULT_REFERENCE_DATE
    ctx = RunContext(
        seed=seed, state=state_name, reference_t=epoch(ref, 12 * 3600 - geo["utc_offset"] * 3600),
        years=years_of_history, catalog=Catalog(), network=build_network(state_name),
        clock=LocalClock(geo["utc_offset"], geo["dst"]), modules=chosen,
    )
    result = GenerateResult(patients=0, files=0, bytes=0, seconds=0.0)
    landing_root = Path(landing_root)

    def write(filename: str, patient_id: str | None, data: bytes) -> None:
        target = landing_root / landing_relpath(filename, patient_id)
        write_atomic(target, data)
        result.files += 1
        result.bytes += len(data)
        result.paths.append(target)

    for index in range(patients):
        person, bundle = simulate_patient(ctx, index)
        write(bundle_filename(person.given, person.family, person.id), person.id, encode_bundle(bundle))
        result.patients += 1
        if progress is not None:
            progress(1)
    if patients:
        orgs = sorted(ctx.used_orgs.values(), key=lambda o: o.id)
        clinicians = sorted(ctx.used_clinicians.values(), key=lambda c: c.id)
        home = ctx.network.home_location_id if ctx.used_home else None
        write(f"hospitalInformation{seed}.json", None, encode_bundle(hospital_bundle(orgs, ctx.usage, home)))
        write(f"practitionerInformation{seed}.json", None, encode_bundle(practitioner_bundle(clinicians, ctx.usage)))
    result.seconds = time.perf_counter() - started
    return result


__all__ = [
    "DEFAULT_REFERENCE_DATE",
    "GenerateResult",
    "MODULE_NAMES",
    "generate_patients",
    "run_synthea",
    "synthea_command",
]
