"""Optional clinical modules, named like the Synthea modules they follow.

Each module plans its own events (`plan`) and records them (`handlers`, keyed by event
kind). Wellness visits, chronic and acute disease and death always run; the modules here run
unless a caller leaves them out (`generate_patients(modules=...)`, like Synthea's `-m`
filter), which lets a population be compared with a Synthea build that had fewer modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fhirflow.generate.life import Life
from fhirflow.generate.records import Encounter

Handler = Callable[[Life, int, Any], Encounter | None]


@dataclass(frozen=True)
class Module:
    name: str
    plan: Callable[[Life], None]
    handlers: dict[str, Handler] = field(default_factory=dict)
    summary: str = ""


def registry() -> dict[str, Module]:
    """Every optional module by name (imported here, not at import time of the package)."""
    from fhirflow.generate.modules import dental, hospital, pregnancy, substance

    found = [dental.MODULE, pregnancy.CONTRACEPTIVES, pregnancy.MODULE, hospital.MODULE,
             hospital.HOSPICE,
             substance.MODULE,
             Module("fall_risk", lambda life: None, summary="Morse fall-risk screening at wellness "
                                      "visits from 65 (wellness_encounters, newer Synthea builds)")]
    return {module.name: module for module in found}


MODULE_NAMES = ("dental", "pregnancy", "contraceptives", "hospital", "hospice", "substance",
                "fall_risk")
