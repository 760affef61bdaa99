"""`dbt source freshness` over RAW: how long ago the newest bundle was loaded."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fhirflow.errors import FhirflowError
from fhirflow.transform.runner import dbt_args, invoke

if TYPE_CHECKING:
    from fhirflow.config import Settings

RAW_SOURCE = "source:raw.fhir_bundles"


@dataclass(frozen=True)
class SourceFreshness:
    status: str  # dbt's: pass, warn, error, runtime error
    max_loaded_at: str | None
    age_minutes: float
    error_after_minutes: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_freshness(settings: Settings, *, error_after_minutes: int) -> SourceFreshness:
    """dbt's freshness of RAW.FHIR_BUNDLES against `error_after_minutes` (the dbt variable
    `raw_freshness_minutes` that sources.yml reads); warns at half of it."""
    target = settings.state_dir / "dbt" / "freshness"
    args = ["--quiet", "--no-use-colors",
            *dbt_args(settings, "source freshness", target_path=target,
                      dbt_vars={"raw_freshness_minutes": error_after_minutes}),
            "--select", RAW_SOURCE]
    invoke(settings, args, "source freshness")
    sources = target / "sources.json"
    if not sources.is_file():
        raise FhirflowError(f"dbt source freshness wrote no {sources}")
    results = json.loads(sources.read_text()).get("results", [])
    if not results:
        raise FhirflowError("dbt source freshness checked no source")
    r = results[0]
    loaded_at = r.get("max_loaded_at")
    if loaded_at is None or str(loaded_at).startswith("0001-01-01"):
        # dbt's stand-in for max() of an empty table: nothing loaded yet, nothing stale.
        return SourceFreshness("pass", None, 0.0, error_after_minutes)
    age = r.get("max_loaded_at_time_ago_in_s")
    return SourceFreshness(str(r.get("status")), loaded_at,
                           float(age) / 60 if age is not None else float("inf"),
                           error_after_minutes)
