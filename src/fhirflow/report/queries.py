"""Every SQL statement the report runs, in one place.

The statements are plain SQL that DuckDB and Snowflake both accept (unquoted lower-case
names, `extract`, `case`, `like`, `count(distinct)`, `union all`): the same text runs on
either warehouse through `Warehouse.query`. Each query names the relations it reads, so a
warehouse where dbt has not built them yet gets a sentence instead of a failed query.

They read the star schema's marts and data-quality models (dim_*, fct_*, mart_*, dq_*) and,
for what the load did, RAW's own tables (LOAD_WATERMARK, LOAD_ERRORS, ENTRY_ERRORS,
FHIR_BUNDLES, FHIR_RESOURCES); never staging or intermediate models.
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
SCHEMAS = ("raw", "marts")

# Loads drawn in "loads over time": a warehouse fed every 5 minutes has 100 k loads a year.
MAX_LOADS = 500
# Quarantined files and entries listed one by one (all of them are counted by reason).
MAX_ERROR_FILES = 50
MAX_ERROR_ENTRIES = 50


def band_start(band: str) -> int:
    """Where an age band of dim_patients.age_band starts ('18-34' -> 18, '80+' -> 80), so
    the bands sort youngest first whatever the mart defines; 'unknown' sorts last."""
    head = band.split("-")[0].rstrip("+")
    return int(head) if head.isdigit() else 1_000


@dataclass(frozen=True)
class Query:
    name: str
    sql: str
    needs: tuple[str, ...]  # "schema.relation", lower case


# Cost is what the claim asked for: the EOB's submitted total, else Claim.total, as
# fct_encounters.total_claim_cost has it, so the by-payer and by-class figures agree.
_CLAIM_COST = "coalesce(submitted_total, claim_total)"
# A patient-year: a patient with at least one claim with a service date in a calendar year.
# A CTE joined to each row (rather than a scalar subquery beside a GROUP BY) so that both
# warehouses read it as one constant per row.
_PATIENT_YEARS = """active as (
    select count(*) as patient_years
    from (
        select distinct patient_id, extract(year from service_date) as service_year
        from marts.fct_claims
    ) as billed
)"""

QUERIES: tuple[Query, ...] = (
    Query("raw_facts", """
select
    (select count(*) from raw.fhir_bundles) as bundles,
    (select count(*) from raw.load_watermark) as loads,
    (select count(*) from raw.load_errors) as quarantined,
    (select count(*) from raw.entry_errors) as entries_quarantined,
    (select max(finished_at) from raw.load_watermark) as last_load_at""",
          ("raw.fhir_bundles", "raw.load_watermark", "raw.load_errors", "raw.entry_errors")),
    Query("resource_types", """
select resource_type, count(*) as resources
from raw.fhir_resources
group by resource_type""", ("raw.fhir_resources",)),
    Query("age_sex", """
select gender, coalesce(age_band, 'unknown') as age_band, count(*) as patients
from marts.dim_patients
group by gender, coalesce(age_band, 'unknown')""", ("marts.dim_patients",)),
    Query("race_ethnicity", """
select race, ethnicity, count(*) as patients
from marts.dim_patients
group by race, ethnicity""", ("marts.dim_patients",)),
    Query("vital_status", """
select is_alive, count(*) as patients
from marts.dim_patients
group by is_alive""", ("marts.dim_patients",)),
    Query("places", """
select state, city, count(*) as patients
from marts.dim_patients
group by state, city""", ("marts.dim_patients",)),
    Query("encounters_monthly", """
select year as event_year, month as event_month, encounter_class,
    sum(encounters) as encounters
from marts.mart_utilization_monthly
group by year, month, encounter_class""", ("marts.mart_utilization_monthly",)),
    # Lifetime prevalence over the whole population (the mart's 'all' x 'all' rows).
    Query("conditions", """
select condition_code, condition_description as description, condition_category as category,
    patients_with_condition as patients, population, prevalence
from marts.mart_condition_prevalence
where gender = 'all' and age_band = 'all'""", ("marts.mart_condition_prevalence",)),
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
from marts.fct_immunizations
group by description""", ("marts.fct_immunizations",)),
    Query("cost_yearly", f"""
select extract(year from service_date) as event_year,
    max(extract(month from service_date)) as last_month,
    count(distinct patient_id) as patients,
    sum({_CLAIM_COST}) as cost
from marts.fct_claims
where service_date is not null
group by extract(year from service_date)""", ("marts.fct_claims",)),
    # Per payer: its claims over the patient-years in which it was billed at least once.
    Query("cost_by_payer", f"""
select coalesce(p.payer_name, 'no payer recorded') as payer_name,
    count(*) as claims,
    sum(case when c.claim_kind = 'medication' then {_CLAIM_COST} else 0 end)
        as pharmacy_cost,
    sum({_CLAIM_COST}) as cost,
    count(distinct c.patient_id || '|' || cast(extract(year from c.service_date) as varchar))
        as patient_years
from marts.fct_claims as c
left join marts.dim_payers as p
    on c.payer_id = p.payer_id
group by coalesce(p.payer_name, 'no payer recorded')""",
          ("marts.fct_claims", "marts.dim_payers")),
    # Per class: its cost over every patient-year, so the classes add up to the whole;
    # prescriptions are billed outside encounters, as their own line.
    Query("cost_by_class", f"""
with {_PATIENT_YEARS}
select coalesce(e.encounter_class, 'unknown') as encounter_class, count(*) as encounters,
    sum(e.total_claim_cost) as cost, max(active.patient_years) as patient_years
from marts.fct_encounters as e
cross join active
group by coalesce(e.encounter_class, 'unknown')
union all
select 'prescriptions (pharmacy claims)' as encounter_class, count(*) as encounters,
    sum({_CLAIM_COST}) as cost, max(active.patient_years) as patient_years
from marts.fct_claims as c
cross join active
where c.claim_kind = 'medication'""", ("marts.fct_encounters", "marts.fct_claims")),
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
    Query("entry_reasons", """
select reason, count(*) as entry_count, count(distinct object_key) as file_count
from raw.entry_errors
group by reason""", ("raw.entry_errors",)),
    Query("error_entries", f"""
select object_key, entry_index, line_number, resource_type, reason, failed_at
from raw.entry_errors
order by failed_at desc, object_key, entry_index, line_number
limit {MAX_ERROR_ENTRIES}""", ("raw.entry_errors",)),
    # `references` is a reserved word on DuckDB: the sum of its three parts is the same.
    Query("reference_integrity", """
select resource_type, reference_path,
    resolved + undefined + unresolved as reference_count,
    undefined as undefined_count, unresolved as unresolved_count,
    max_undefined_share, max_unresolved_share, is_within_threshold
from marts.dq_reference_integrity""", ("marts.dq_reference_integrity",)),
    Query("completeness", """
select model_name, column_name, column_role, row_count, null_count, max_null_share,
    is_within_threshold
from marts.dq_completeness""", ("marts.dq_completeness",)),
)

# Views too (base_fhir_entries is one): Snowflake's information_schema.tables lists them,
# fakesnow's only information_schema.views, which DuckDB and Snowflake also have.
RELATIONS_SQL = """
select lower(table_schema) as table_schema, lower(table_name) as table_name
from information_schema.tables
where lower(table_schema) in ({schemas})
union
select lower(table_schema) as table_schema, lower(table_name) as table_name
from information_schema.views
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
