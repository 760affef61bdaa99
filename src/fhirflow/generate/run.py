"""A run of the simulator across worker processes.

Patients are simulated in chunks of consecutive indices. Patient i depends only on the run's
arguments and i (its generator is seeded from them), every worker writes the bundles of its
own chunks (or, for NDJSON, its chunks' part files, which the parent joins in chunk order),
and what the run-level bundles need (which providers were used, and how often) is
summed in the parent: so the files are the same whatever the number of workers.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fhirflow.generate.bundles import bundle_filename, encode_bundle
from fhirflow.generate.catalog import Catalog
from fhirflow.generate.clock import LocalClock
from fhirflow.generate.life import RunContext
from fhirflow.generate.ndjson import BulkTarget, ChunkParts
from fhirflow.generate.providers import Utilization, build_network
from fhirflow.generate.simulate import simulate_patient
from fhirflow.landing import landing_relpath, write_atomic

CHUNK = 16  # patients per task: large enough to make the hand-off cheap, small enough to balance


@dataclass(frozen=True)
class RunArguments:
    """Everything a worker needs to rebuild the run's context (it must pickle)."""

    landing_root: Path
    seed: int
    state: str
    reference_t: int
    years: int
    utc_offset: int
    dst: bool
    modules: frozenset[str]
    bulk: BulkTarget | None = None  # NDJSON parts instead of one bundle file per patient

    def context(self) -> RunContext:
        return RunContext(seed=self.seed, state=self.state, reference_t=self.reference_t,
                          years=self.years,
                          catalog=Catalog(), network=build_network(self.state),
                          clock=LocalClock(self.utc_offset, self.dst), modules=self.modules)


@dataclass
class ChunkResult:
    """What one chunk of patients wrote, and the provider use the run-level bundles count."""

    paths: list[Path] = field(default_factory=list)
    bytes: int = 0
    usage: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    organizations: set[str] = field(default_factory=set)
    clinicians: set[str] = field(default_factory=set)
    used_home: bool = False
    parts: dict[str, Path] = field(default_factory=dict)  # NDJSON: resource type -> part


_worker_context: RunContext | None = None
_worker_arguments: RunArguments | None = None


def _init_worker(arguments: RunArguments) -> None:
    global _worker_context, _worker_arguments  # one context per worker process, built once
    _worker_arguments = arguments
    _worker_context = arguments.context()


def _run_chunk(bounds: tuple[int, int]) -> ChunkResult:
    assert _worker_context is not None and _worker_arguments is not None
    return simulate_chunk(_worker_context, _worker_arguments.landing_root, *bounds,
                          bulk=_worker_arguments.bulk)


def simulate_chunk(ctx: RunContext, landing_root: Path, start: int, stop: int,
                   each: Callable[[], None] | None = None,
                   bulk: BulkTarget | None = None) -> ChunkResult:
    """Patients start..stop-1: write their bundles (or, with `bulk`, this chunk's NDJSON
    parts); return what was written and used."""
    ctx.usage.clear()
    ctx.used_orgs.clear()
    ctx.used_clinicians.clear()
    ctx.used_home = False
    result = ChunkResult()
    # A patient's resources form no reference cycles, so reference counting frees them; the
    # cycle collector would only rescan the bundle being built (a quarter of the run's time).
    collecting = gc.isenabled()
    parts = ChunkParts(bulk, start, ctx.state) if bulk is not None else None
    gc.disable()
    try:
        for index in range(start, stop):
            person, bundle = simulate_patient(ctx, index)
            if parts is not None:
                parts.write(bundle)
            else:
                filename = bundle_filename(person.given, person.family, person.id)
                target = landing_root / landing_relpath(filename, person.id)
                data = encode_bundle(bundle)
                write_atomic(target, data)
                result.paths.append(target)
                result.bytes += len(data)
            if each is not None:
                each()
        if parts is not None:
            result.parts = parts.close()
    except BaseException:
        if parts is not None:
            parts.discard()
        raise
    finally:
        if collecting:
            gc.enable()
    result.usage = {key: (u.encounters, u.procedures, u.labs, u.prescriptions)
                    for key, u in ctx.usage.items()}
    result.organizations = set(ctx.used_orgs)
    result.clinicians = set(ctx.used_clinicians)
    result.used_home = ctx.used_home
    return result


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_chunks(arguments: RunArguments, patients: int, workers: int,
               progress: Callable[[int], None] | None) -> Iterator[ChunkResult]:
    """Every chunk's result, in patient order, from `workers` processes (or this one)."""
    chunks = [(start, min(start + CHUNK, patients)) for start in range(0, patients, CHUNK)]
    workers = max(1, min(workers, len(chunks)))
    if workers == 1:
        ctx = arguments.context()
        tick = (lambda: progress(1)) if progress is not None else None
        for start, stop in chunks:
            yield simulate_chunk(ctx, arguments.landing_root, start, stop, tick,
                                 bulk=arguments.bulk)
        return
    with multiprocessing.get_context(_start_method()).Pool(workers, _init_worker,
                                                           (arguments,)) as pool:
        for (start, stop), result in zip(chunks, pool.imap(_run_chunk, chunks), strict=True):
            if progress is not None:
                progress(stop - start)
            yield result


def _start_method() -> str:
    """fork when it is safe: the workers then start at once with the code and data loaded.

    Forking a process that runs other threads (an Airflow task's heartbeat, a web server) can
    copy a lock some thread holds and hang the child, so such callers get fresh (spawned)
    interpreters instead, as they do where fork does not exist.
    """
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return "fork"
    return "spawn"


def merge_usage(results: list[ChunkResult]) -> dict[str, Utilization]:
    usage: dict[str, Utilization] = {}
    for result in results:
        for key, (encounters, procedures, labs, prescriptions) in result.usage.items():
            total = usage.setdefault(key, Utilization())
            total.encounters += encounters
            total.procedures += procedures
            total.labs += labs
            total.prescriptions += prescriptions
    return usage
