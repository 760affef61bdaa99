"""Every SQL statement the report runs, in one place.

The statements are plain SQL that DuckDB and Snowflake both accept (unquoted lower-case
names, `extract`, `case`, `like`, `count(distinct)`, `union all`): the same text runs on
either warehouse through `Warehouse.query`. Each query names the relations it reads, so a
warehouse where dbt has not built them yet gets a sentence instead of a failed query.

Several queries stand in for models of the star schema (issue 12) that are not built yet;
`Query.mart` names the model that should answer it once it exists, so moving over is a change
of the query's text here and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fhirflow.errors import FhirflowError

if TYPE_CHECKING:
    from fhirflow.warehouse import Warehouse

# The layers the report reads (lower case; Snowflake reports them upper case).
SCHEMAS = ("raw", "staging", "intermediate", "marts")

# Loads drawn in "loads over time": a warehouse fed every 5 minutes has 100 k loads a year.
MAX_LOADS = 500
# Quarantined files listed one by one (all of them are counted by reason).
MAX_ERROR_FILES = 50

AGE_BAND_WIDTH = 10
AGE_BAND_TOP = 90  # the last band is "90+"


def age_bands() -> list[str]:
    """Bands in order, youngest first: '0-9', '10-19', ..., '90+'."""
    bands = [f"{lo}-{lo + AGE_BAND_WIDTH - 1}" for lo in range(0, AGE_BAND_TOP, AGE_BAND_WIDTH)]
    return [*bands, f"{AGE_BAND_TOP}+"]


def _age_band_sql(column: str) -> str:
    whens = [
        f"when {column} < {lo + AGE_BAND_WIDTH} then '{band}'"
        for lo, band in zip(range(0, AGE_BAND_TOP, AGE_BAND_WIDTH), age_bands(), strict=False)
    ]
    return (f"case when {column} is null then 'unknown' {' '.join(whens)} "
            f"else '{AGE_BAND_TOP}+' end")


@dataclass(frozen=True)
class Query:
    name: str
    sql: str
    needs: tuple[str, ...]  # "schema.relation", lower case
    mart: str = ""  # the issue-12 model that should answer this once it lands


# -- reference integrity and completeness until dq_reference_integrity / dq_completeness --


@dataclass(frozen=True)
class ReferenceCheck:
    resource_type: str
    reference_path: str
    child: str  # relation holding the reference
    column: str  # its resolved id column
    parent: str  # relation the id must be found in
    key: str  # key column of the parent
    where: str = ""  # rows where the reference is expected (others are not counted)


REFERENCE_CHECKS: tuple[ReferenceCheck, ...] = (
    ReferenceCheck("Encounter", "Encounter.subject", "staging.stg_encounters", "patient_id",
                   "staging.stg_patients", "patient_id"),
    ReferenceCheck("Encounter", "Encounter.serviceProvider", "staging.stg_encounters",
                   "organization_id", "staging.stg_organizations", "organization_id"),
    ReferenceCheck("Encounter", "Encounter.participant.individual", "staging.stg_encounters",
                   "provider_reference", "intermediate.int_reference_map", "reference"),
    ReferenceCheck("Condition", "Condition.encounter", "staging.stg_conditions",
                   "encounter_id", "staging.stg_encounters", "encounter_id"),
    ReferenceCheck("Observation", "Observation.encounter", "staging.stg_observations",
                   "encounter_id", "staging.stg_encounters", "encounter_id"),
    ReferenceCheck("MedicationRequest", "MedicationRequest.encounter",
                   "staging.stg_medications", "encounter_id", "staging.stg_encounters",
                   "encounter_id"),
    ReferenceCheck("Procedure", "Procedure.encounter", "staging.stg_procedures",
                   "encounter_id", "staging.stg_encounters", "encounter_id"),
    ReferenceCheck("Immunization", "Immunization.encounter", "staging.stg_immunizations",
                   "encounter_id", "staging.stg_encounters", "encounter_id"),
    ReferenceCheck("Claim", "Claim.patient", "staging.stg_claims", "patient_id",
                   "staging.stg_patients", "patient_id"),
    ReferenceCheck("Claim", "Claim.item.encounter", "staging.stg_claims", "encounter_id",
                   "staging.stg_encounters", "encounter_id", "claim_kind = 'encounter'"),
)


def _reference_sql(check: ReferenceCheck) -> str:
    where = f" where {check.where}" if check.where else ""
    # undefined: the field is empty; unresolved: it names something the warehouse lacks.
    return (
        f"select '{check.resource_type}' as resource_type, "
        f"'{check.reference_path}' as reference_path, "
        "count(*) as reference_count, "
        f"count(*) - count(c.{check.column}) as undefined_count, "
        f"count(c.{check.column}) - count(p.target_key) as unresolved_count "
        f"from {check.child} as c "
        f"left join (select distinct {check.key} as target_key from {check.parent}) as p "
        f"on c.{check.column} = p.target_key{where}"
    )


# Key columns whose share of nulls the report shows (dq_completeness will own this list).
COMPLETENESS_COLUMNS: dict[str, tuple[str, ...]] = {
    "stg_patients": ("birth_date", "gender", "race", "ethnicity", "city", "state"),
    "stg_encounters": ("start_at", "stop_at", "patient_id", "organization_id",
                       "provider_reference", "encounter_class", "code"),
    "stg_conditions": ("start_date", "patient_id", "encounter_id", "code"),
    "stg_observations": ("date_at", "patient_id", "encounter_id", "code"),
    "stg_medications": ("start_at", "patient_id", "encounter_id", "code"),
    "stg_procedures": ("start_at", "patient_id", "encounter_id", "code"),
    "stg_immunizations": ("date_at", "patient_id", "encounter_id", "code"),
    "stg_claims": ("patient_id", "payer_name", "total"),
}


def _completeness_sql() -> str:
    parts = [
        f"select '{model}' as model_name, '{column}' as column_name, "
        f"count(*) as row_count, count(*) - count({column}) as null_count "
        f"from staging.{model}"
        for model, columns in COMPLETENESS_COLUMNS.items()
        for column in columns
    ]
    return "\nunion all\n".join(parts)


_CONDITION_CATEGORY = (
    # The SNOMED CT semantic tag ends the description: "Stress (finding)". Synthea writes
    # some without one ("COVID-19"): those stay 'untagged', shown beside the disorders.
    "case when description like '%(disorder)' then 'disorder' "
    "when description like '%(finding)' then 'finding' "
    "when description like '%(situation)' then 'situation' "
    "else 'untagged' end"
)

QUERIES: tuple[Query, ...] = (
    Query("raw_facts", """
select
    (select count(*) from raw.fhir_bundles) as bundles,
    (select count(*) from raw.load_watermark) as loads,
    (select count(*) from raw.load_errors) as quarantined,
    (select max(finished_at) from raw.load_watermark) as last_load_at""",
          ("raw.fhir_bundles", "raw.load_watermark", "raw.load_errors")),
    Query("resource_types", """
select resource_type, count(*) as resources
from staging.base_fhir_entries
group by resource_type""", ("staging.base_fhir_entries",)),
    Query("age_sex", f"""
select gender, {_age_band_sql('age_years')} as age_band, count(*) as patients
from marts.dim_patients
group by 1, 2""", ("marts.dim_patients",), "dim_patients.age_band"),
    Query("race_ethnicity", """
select race, ethnicity, count(*) as patients
from marts.dim_patients
group by race, ethnicity""", ("marts.dim_patients",)),
    Query("vital_status", """
select is_deceased, count(*) as patients
from marts.dim_patients
group by is_deceased""", ("marts.dim_patients",), "dim_patients.is_alive"),
    Query("places", """
select state, city, count(*) as patients
from marts.dim_patients
group by state, city""", ("marts.dim_patients",)),
    Query("encounters_monthly", """
select
    extract(year from start_at) as event_year,
    extract(month from start_at) as event_month,
    encounter_class,
    count(*) as encounters
from marts.fct_encounters
where start_at is not null
group by 1, 2, 3""", ("marts.fct_encounters",), "mart_utilization_monthly"),
    Query("conditions", f"""
select {_CONDITION_CATEGORY} as category, description, count(distinct patient_id) as patients
from staging.stg_conditions
group by 1, 2""", ("staging.stg_conditions",),
          "mart_condition_prevalence (fct_conditions.category)"),
    Query("medications", """
select description, count(*) as prescriptions, count(distinct patient_id) as patients
from marts.fct_medications
group by description""", ("marts.fct_medications",)),
    Query("procedures", """
select description, count(*) as procedures, count(distinct patient_id) as patients
from marts.fct_procedures
group by description""", ("marts.fct_procedures",)),
    Query("immunizations", """
select description, count(*) as doses, count(distinct patient_id) as patients
from staging.stg_immunizations
group by description""", ("staging.stg_immunizations",), "fct_immunizations"),
    # A patient-year: one patient with at least one billed encounter or prescription in a
    # calendar year. Cost: encounter claims plus pharmacy claims.
    Query("cost_yearly", """
with billed as (
    select patient_id, extract(year from start_at) as event_year,
        extract(month from start_at) as event_month, total_claim_cost as cost
    from marts.fct_encounters
    union all
    select patient_id, extract(year from start_at) as event_year,
        extract(month from start_at) as event_month, base_cost as cost
    from marts.fct_medications
)
select event_year, max(event_month) as last_month, count(distinct patient_id) as patients,
    sum(cost) as cost
from billed
where event_year is not null
group by event_year""", ("marts.fct_encounters", "marts.fct_medications"),
          "mart_utilization_monthly (+ fct_claims for pharmacy)"),
    Query("cost_by_payer", """
select payer_name, 'encounters' as claim_source, count(*) as claims, sum(total_claim_cost) as cost
from marts.fct_encounters
group by payer_name
union all
select payer_name, 'prescriptions' as claim_source, count(*) as claims, sum(base_cost) as cost
from marts.fct_medications
group by payer_name""", ("marts.fct_encounters", "marts.fct_medications"),
          "fct_claims + dim_payers"),
    Query("cost_by_class", """
select encounter_class, count(*) as encounters, sum(total_claim_cost) as cost
from marts.fct_encounters
group by encounter_class""", ("marts.fct_encounters",), "mart_utilization_monthly"),
    Query("loads", f"""
select load_id, finished_at, files_seen, files_loaded, files_failed, bytes_loaded
from raw.load_watermark
order by load_id desc
limit {MAX_LOADS}""", ("raw.load_watermark",)),
    Query("error_reasons", """
select reason, count(*) as file_count, sum(file_size) as byte_count
from raw.load_errors
group by reason""", ("raw.load_errors",)),
    Query("error_files", f"""
select object_key, reason, file_size, failed_at
from raw.load_errors
order by failed_at desc, object_key
limit {MAX_ERROR_FILES}""", ("raw.load_errors",)),
    Query("reference_integrity",
          "\nunion all\n".join(_reference_sql(c) for c in REFERENCE_CHECKS),
          tuple(sorted({r for c in REFERENCE_CHECKS for r in (c.child, c.parent)})),
          "dq_reference_integrity"),
    Query("completeness", _completeness_sql(),
          tuple(f"staging.{m}" for m in COMPLETENESS_COLUMNS), "dq_completeness"),
)

RELATIONS_SQL = """
select lower(table_schema) as table_schema, lower(table_name) as table_name
from information_schema.tables
where lower(table_schema) in ({schemas})""".format(
    schemas=", ".join(f"'{s}'" for s in SCHEMAS)
)


@dataclass
class Answer:
    """One query's rows, or why there are none (relations not built, or the query failed)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    missing: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.missing and self.error is None


def _plain(value: Any) -> Any:
    """Snowflake's NUMBER arrives as Decimal; charts and f-strings want float/int."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | str | int | float | bool) or value is None:
        return value
    return str(value)


def existing_relations(warehouse: Warehouse) -> set[str]:
    rows = warehouse.query(RELATIONS_SQL)
    return {f"{r['table_schema']}.{r['table_name']}" for r in rows}


def run_queries(warehouse: Warehouse) -> dict[str, Answer]:
    """Every query of QUERIES whose relations exist; the others say what they miss."""
    relations = existing_relations(warehouse)
    answers: dict[str, Answer] = {}
    for query in QUERIES:
        missing = tuple(r for r in query.needs if r not in relations)
        if missing:
            answers[query.name] = Answer(missing=missing)
            continue
        try:
            rows = warehouse.query(query.sql)
        except FhirflowError as exc:
            # One failing query costs its chart, not the report; the chart says why.
            answers[query.name] = Answer(error=str(exc))
            continue
        answers[query.name] = Answer(
            rows=[{k: _plain(v) for k, v in row.items()} for row in rows]
        )
    return answers
