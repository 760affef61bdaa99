"""What the warehouse accepts per resource, decided at load time, the same on both warehouses.

A resource that breaks a rule goes to RAW.ENTRY_ERRORS with its file, entry index (or NDJSON
line) and the rule's reason; the rest of its file loads. The rules are what the staging models
need to type a resource (the columns their tests guard as not null) and the shapes of other
FHIR versions that would otherwise load and fail the marts' tests: one bad entry must never
skip models for everyone (issue 10).

Each rule reads a few paths of the resource. All paths of all rules are extracted by one
multi-path call per resource (`json_extract_string(resource, [paths])` on DuckDB, one `:path`
each on Snowflake's already-parsed VARIANT), and the reasons are a CASE over those values.
"""

from __future__ import annotations

from dataclasses import dataclass

# The columns every rule may read, in the order of the extracted list (1-based on DuckDB).
PATHS: tuple[str, ...] = (
    "resourceType",          # 1
    "id",                    # 2
    "subject.reference",     # 3
    "patient.reference",     # 4
    "patient",               # 5 (any value: an STU3/DSTU2 subject)
    "birthDate",             # 6
    "gender",                # 7
    "period.start",          # 8
    "class",                 # 9 (JSON text: an array in R5)
    "actualPeriod",          # 10 (R5 Encounter)
)

# R4 types whose patient is `subject` (the staging models test it as not null).
SUBJECT_TYPES = ("Encounter", "Condition", "Observation", "Procedure", "MedicationRequest",
                 "CarePlan", "ImagingStudy", "DiagnosticReport")
# R4 types whose patient is `patient`.
PATIENT_TYPES = ("AllergyIntolerance", "Immunization", "Claim", "ExplanationOfBenefit",
                 "Device", "SupplyDelivery")

NO_RESOURCE_TYPE = "resource without resourceType (or the entry holds no resource)"
NO_ID = "resource without id"
R5_ENCOUNTER = "FHIR R5 shape (Encounter.class is a list or actualPeriod is set): fhirflow reads R4"
OLD_VERSION = "STU3/DSTU2 shape (patient instead of subject): fhirflow reads R4"
NO_SUBJECT = "no subject.reference (the patient): staging cannot place the resource"
NO_PATIENT = "no patient.reference: staging cannot place the resource"
NO_BIRTH_DATE = "Patient.birthDate missing or not a date"
NO_GENDER = "Patient.gender missing"
NO_START = "Encounter.period.start missing or not a dateTime"
BUNDLE_IN_NDJSON = "a Bundle as a resource (one resource per bundle entry or NDJSON line)"
INVALID_LINE = "invalid JSON line (malformed, truncated or not UTF-8)"


@dataclass(frozen=True)
class Dialect:
    """How one warehouse spells the few expressions the rules need. `v(n)` is the text of
    path PATHS[n-1]; `date_ok`/`ts_ok` test that a text casts to a date/timestamp."""

    value: str  # a format string with {n}: the n-th extracted value
    date_ok: str  # with {x}
    ts_ok: str  # with {x}

    def v(self, n: int) -> str:
        return self.value.format(n=n)


def _in(names: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{n}'" for n in names) + ")"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def reason_sql(d: Dialect) -> str:
    """A CASE giving the first broken rule's reason, or NULL for an accepted resource."""
    rt, rid = d.v(1), d.v(2)
    rules = [
        (f"{rt} is null", NO_RESOURCE_TYPE),
        (f"{rid} is null or {rid} = ''", NO_ID),
        (f"{rt} = 'Bundle'", BUNDLE_IN_NDJSON),
        (f"{rt} = 'Encounter' and (left({d.v(9)}, 1) = '[' or {d.v(10)} is not null)",
         R5_ENCOUNTER),
        (f"{rt} in {_in(SUBJECT_TYPES)} and {d.v(3)} is null and {d.v(5)} is not null",
         OLD_VERSION),
        (f"{rt} in {_in(SUBJECT_TYPES)} and {d.v(3)} is null", NO_SUBJECT),
        (f"{rt} in {_in(PATIENT_TYPES)} and {d.v(4)} is null", NO_PATIENT),
        (f"{rt} = 'Patient' and not ({d.date_ok.format(x=d.v(6))})", NO_BIRTH_DATE),
        (f"{rt} = 'Patient' and {d.v(7)} is null", NO_GENDER),
        (f"{rt} = 'Encounter' and not ({d.ts_ok.format(x=d.v(8))})", NO_START),
    ]
    whens = "\n".join(f"        when {cond} then {_literal(reason)}" for cond, reason in rules)
    return f"case\n{whens}\n    end"


DUCKDB = Dialect(
    value="v[{n}]",
    date_ok="try_cast({x} as date) is not null",
    ts_ok="try_cast({x} as timestamptz) is not null",
)

SNOWFLAKE = Dialect(
    value="V{n}",
    date_ok="try_cast({x} as date) is not null",
    ts_ok="try_cast({x} as timestamp_tz) is not null",
)


def duckdb_paths() -> str:
    """The DuckDB list literal of PATHS as JSON paths."""
    return "[" + ", ".join(f"'$.{p}'" for p in PATHS) + "]"


def snowflake_columns(expr: str) -> str:
    """`expr:path::varchar as Vn` for each path (Snowflake reads the parsed VARIANT). For the
    paths the rules only test for presence or for being a list, a marker instead of the
    value (`[` for a list): TO_JSON only where it is needed, on Encounters."""
    parts = []
    for n, path in enumerate(PATHS, start=1):
        if path == "class":
            parts.append(f"case when {expr}:resourceType::varchar = 'Encounter' "
                         f"then left(to_json({expr}:class), 1) end as V{n}")
        elif path in ("actualPeriod", "patient"):
            parts.append(f"case when {expr}:{path} is not null then '{{' end as V{n}")
        else:
            parts.append(f"{expr}:{path}::varchar as V{n}")
    return ",\n    ".join(parts)
