"""`fhirflow doctor`: the pre- and post-deployment checklist as checks a user runs against
their own deployment, on either warehouse and store.

Each check answers pass, fail (with what to do) or skip (not applicable, or blocked by an
earlier failure). The checks themselves are in `checks.py` (settings, store, warehouse,
privileges, stage, dbt debug) and `round_trip.py` (two generated bundles through
upload, load and a dbt build in scratch schemas, dropped afterwards). Nothing here prints a
secret: settings are shown through `config.described`, errors are the libraries' first lines
with the stage statement's literals cut.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from fhirflow.config import described

if TYPE_CHECKING:
    from fhirflow.config import Settings

Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        """One line: status, check, what was found, and for a failure what to do."""
        text = f"{self.status.upper():<4}  {self.name:<11} {self.detail}"
        return f"{text}; to fix: {self.fix}" if self.status == "fail" and self.fix else text


@dataclass
class DoctorReport:
    checks: list[CheckResult] = field(default_factory=list)
    settings: dict[str, str | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks],
                "settings": self.settings}


def run_doctor(
    settings: Settings,
    *,
    round_trip: bool = True,
    report: Callable[[CheckResult], None] | None = None,
) -> DoctorReport:
    """Run every check in order; `report` sees each result as soon as it is known."""
    from fhirflow.doctor import checks
    from fhirflow.doctor.round_trip import check_round_trip

    result = DoctorReport(settings=described(settings))

    def add(check: CheckResult) -> CheckResult:
        result.checks.append(check)
        if report:
            report(check)
        return check

    configured = add(checks.check_settings(settings))
    if configured.status == "fail":
        for name in ("store", "warehouse", "privileges", "stage", "dbt debug", "round trip"):
            add(CheckResult(name, "skip", "the settings are not usable"))
        return result
    add(checks.check_store(settings))
    with checks.opened_warehouse(settings) as (warehouse, reached):
        add(reached)
        if warehouse is None:
            for name in ("privileges", "stage"):
                add(CheckResult(name, "skip", "the warehouse is not reachable"))
        else:
            add(checks.check_privileges(settings, warehouse))
            add(checks.check_stage(settings, warehouse))
    add(checks.check_dbt_debug(settings))
    if not round_trip:
        add(CheckResult("round trip", "skip", "--no-round-trip"))
    elif not result.ok:
        add(CheckResult("round trip", "skip", "an earlier check failed"))
    else:
        add(check_round_trip(settings))
    return result
