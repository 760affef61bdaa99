"""Export the staging layer as Synthea's 18 CSV tables.

Headers and column order are those of the newest Synthea 3.x CSV exporter
(../shared/synthea/MAPPING.md, section 1); values use Synthea's formats: local dates
`YYYY-MM-DD`, UTC timestamps `YYYY-MM-DDTHH:MM:SSZ`, money `%.2f`, observation numbers `%.1f`,
and text passed through Synthea's `clean()` (line breaks and commas become spaces). Columns
with no FHIR source are written empty.

Rows come from the staging models, with the references, costs and reasons that the
intermediate models and marts resolve (practitioner ids from NPIs, claim costs, reason
codes through Conditions). The SQL is plain enough for DuckDB and Snowflake alike; Python
only formats values.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhirflow.errors import FhirflowError, first_line

if TYPE_CHECKING:
    from fhirflow.config import Settings

_CLEAN = re.compile(r"\r\n|\r|\n|,")


def clean(value: Any) -> str:
    """Synthea's `clean()`: `replaceAll("\\r\\n|\\r|\\n|,", " ").trim()`."""
    return "" if value is None else _CLEAN.sub(" ", str(value)).strip()


def _raw(value: Any) -> str:
    return "" if value is None else str(value)


def _date(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)[:10]


def _timestamp(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _fixed(value: Any, places: str) -> str:
    # Java's %.Nf rounds the shortest decimal form of the double half-up; repr() gives
    # Python's shortest form, so 0.15 -> 0.2 and 2.25 -> 2.3 as in Synthea.
    if value is None:
        return ""
    return str(Decimal(repr(float(value))).quantize(Decimal(places), rounding=ROUND_HALF_UP))


def _money(value: Any) -> str:
    return _fixed(value, "0.01")


def _one_decimal(value: Any) -> str:
    return _fixed(value, "0.1")


def _integer(value: Any) -> str:
    if value is None:
        return ""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _decimal(value: Any) -> str:
    return "" if value is None else repr(float(value))


def _empty(_value: Any) -> str:
    return ""


Formatter = Callable[[Any], str]
FORMATS: dict[str, Formatter] = {
    "id": _raw,
    "raw": _raw,
    "text": clean,
    "date": _date,
    "ts": _timestamp,
    "money": _money,
    "value1": _one_decimal,
    "int": _integer,
    "float": _decimal,
    "none": _empty,
}


@dataclass(frozen=True)
class Column:
    header: str
    expr: str | None  # SQL expression; None: no FHIR source, written empty
    kind: str = "text"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    source: str  # FROM ... (with joins), may reference {staging}/{intermediate}/{marts}
    order_by: str

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]


def _c(header: str, expr: str | None = None, kind: str = "text") -> Column:
    return Column(header, expr, kind if expr is not None else "none")


def _empty_columns(*headers: str) -> tuple[Column, ...]:
    return tuple(_c(h) for h in headers)


# Costs of claim items, per encounter and billed code: procedures and immunizations are
# billed as items of their encounter's claim, with the item's net as their BASE_COST.
_ITEM_COSTS = """(
    select claims.encounter_id, items.procedure_code as code, items.amount
    from {staging}.stg_claims_transactions as items
    inner join {intermediate}.int_claims_enriched as claims
        on items.claim_id = claims.claim_id
    where claims.claim_kind = 'encounter' and items.amount is not null
    qualify row_number() over (
        partition by claims.encounter_id, items.procedure_code order by items.charge_id
    ) = 1
)"""

TABLES: tuple[Table, ...] = (
    Table("patients", (
        _c("Id", "p.patient_id", "id"),
        _c("BIRTHDATE", "p.birth_date", "date"),
        _c("DEATHDATE", "p.death_date", "date"),
        _c("SSN", "p.ssn"),
        _c("DRIVERS", "p.drivers"),
        _c("PASSPORT", "p.passport"),
        _c("PREFIX", "p.prefix"),
        _c("FIRST", "p.first_name"),
        _c("MIDDLE", "p.middle_name"),
        _c("LAST", "p.last_name"),
        _c("SUFFIX", "p.suffix"),
        _c("MAIDEN", "p.maiden_name"),
        _c("MARITAL", "p.marital"),
        _c("RACE", "p.race"),
        _c("ETHNICITY", "p.ethnicity"),
        _c("GENDER", "p.gender"),
        _c("BIRTHPLACE", "p.birthplace"),
        _c("ADDRESS", "p.address"),
        _c("CITY", "p.city"),
        _c("STATE", "p.state"),
        _c("COUNTY"),
        _c("FIPS"),
        _c("ZIP", "p.zip"),
        _c("LAT", "p.lat", "float"),
        _c("LON", "p.lon", "float"),
        _c("HEALTHCARE_EXPENSES"),
        _c("HEALTHCARE_COVERAGE"),
        _c("INCOME"),
    ), "{staging}.stg_patients as p", "p.patient_id"),
    Table("encounters", (
        _c("Id", "e.encounter_id", "id"),
        _c("START", "e.start_at", "ts"),
        _c("STOP", "e.stop_at", "ts"),
        _c("PATIENT", "e.patient_id", "id"),
        _c("ORGANIZATION", "e.organization_id", "id"),
        _c("PROVIDER", "e.provider_id", "id"),
        _c("PAYER", "e.payer_id", "id"),
        _c("ENCOUNTERCLASS", "e.encounter_class"),
        _c("CODE", "e.code"),
        _c("DESCRIPTION", "e.description"),
        _c("BASE_ENCOUNTER_COST", "e.base_encounter_cost", "money"),
        _c("TOTAL_CLAIM_COST", "e.total_claim_cost", "money"),
        _c("PAYER_COVERAGE"),
        _c("REASONCODE", "e.reason_code"),
        _c("REASONDESCRIPTION", "e.reason_description"),
    ), "{marts}.fct_encounters as e", "e.patient_id, e.start_at, e.encounter_id"),
    Table("conditions", (
        _c("START", "c.start_date", "date"),
        _c("STOP", "c.stop_date", "date"),
        _c("PATIENT", "c.patient_id", "id"),
        _c("ENCOUNTER", "c.encounter_id", "id"),
        _c("SYSTEM", "c.code_system", "raw"),
        _c("CODE", "c.code"),
        _c("DESCRIPTION", "c.description"),
    ), "{staging}.stg_conditions as c", "c.patient_id, c.start_date, c.condition_id"),
    Table("observations", (
        _c("DATE", "o.date_at", "ts"),
        _c("PATIENT", "o.patient_id", "id"),
        _c("ENCOUNTER", "o.encounter_id", "id"),
        _c("CATEGORY", "o.category"),
        _c("CODE", "o.code"),
        _c("DESCRIPTION", "o.description"),
        # numeric values are %.1f, text values cleaned: resolved per row in _format_row
        _c("VALUE", "coalesce(cast(o.value_number as varchar), o.value_text)", "value"),
        _c("UNITS", "o.units"),
        _c("TYPE", "o.value_type"),
    ), "{staging}.stg_observations as o", "o.patient_id, o.date_at, o.observation_key"),
    Table("medications", (
        _c("START", "m.start_at", "ts"),
        _c("STOP"),
        _c("PATIENT", "m.patient_id", "id"),
        _c("PAYER", "m.payer_id", "id"),
        _c("ENCOUNTER", "m.encounter_id", "id"),
        _c("CODE", "m.code"),
        _c("DESCRIPTION", "m.description"),
        _c("BASE_COST", "m.base_cost", "money"),
        _c("PAYER_COVERAGE"),
        _c("DISPENSES"),
        _c("TOTALCOST"),
        _c("REASONCODE", "m.reason_code"),
        _c("REASONDESCRIPTION", "m.reason_description"),
    ), "{marts}.fct_medications as m", "m.patient_id, m.start_at, m.medication_request_id"),
    Table("procedures", (
        _c("START", "p.start_at", "ts"),
        _c("STOP", "p.stop_at", "ts"),
        _c("PATIENT", "p.patient_id", "id"),
        _c("ENCOUNTER", "p.encounter_id", "id"),
        _c("SYSTEM", "p.code_system", "raw"),
        _c("CODE", "p.code"),
        _c("DESCRIPTION", "p.description"),
        _c("BASE_COST", "p.base_cost", "money"),
        _c("REASONCODE", "p.reason_code"),
        _c("REASONDESCRIPTION", "p.reason_description"),
    ), "{marts}.fct_procedures as p", "p.patient_id, p.start_at, p.procedure_id"),
    Table("immunizations", (
        _c("DATE", "i.date_at", "ts"),
        _c("PATIENT", "i.patient_id", "id"),
        _c("ENCOUNTER", "i.encounter_id", "id"),
        _c("CODE", "i.code"),
        _c("DESCRIPTION", "i.description"),
        _c("BASE_COST", "costs.amount", "money"),
    ), "{staging}.stg_immunizations as i left join " + _ITEM_COSTS
       + " as costs on i.encounter_id = costs.encounter_id and i.code = costs.code",
       "i.patient_id, i.date_at, i.immunization_id"),
    Table("allergies", (
        _c("START", "a.start_date", "date"),
        _c("STOP"),
        _c("PATIENT", "a.patient_id", "id"),
        _c("ENCOUNTER"),
        _c("CODE", "a.code"),
        _c("SYSTEM", "a.code_system"),
        _c("DESCRIPTION", "a.description"),
        _c("TYPE", "a.allergy_type"),
        _c("CATEGORY", "a.category"),
        _c("REACTION1", "a.reaction_1"),
        _c("DESCRIPTION1", "a.description_1"),
        _c("SEVERITY1", "a.severity_1"),
        _c("REACTION2", "a.reaction_2"),
        _c("DESCRIPTION2", "a.description_2"),
        _c("SEVERITY2", "a.severity_2"),
    ), "{staging}.stg_allergies as a", "a.patient_id, a.start_date, a.allergy_id"),
    Table("careplans", (
        _c("Id", "cp.careplan_id", "id"),
        _c("START", "cp.start_date", "date"),
        _c("STOP", "cp.stop_date", "date"),
        _c("PATIENT", "cp.patient_id", "id"),
        _c("ENCOUNTER", "cp.encounter_id", "id"),
        _c("CODE", "cp.code"),
        _c("DESCRIPTION", "cp.description", "raw"),
        _c("REASONCODE", "reasons.code"),
        _c("REASONDESCRIPTION", "reasons.description"),
    ), "{staging}.stg_careplans as cp left join {staging}.stg_conditions as reasons"
       " on cp.reason_condition_id = reasons.condition_id",
       "cp.patient_id, cp.start_date, cp.careplan_id"),
    Table("devices", (
        _c("START"),
        _c("STOP"),
        _c("PATIENT", "d.patient_id", "id"),
        _c("ENCOUNTER"),
        _c("CODE", "d.code"),
        _c("DESCRIPTION", "d.description"),
        _c("UDI", "d.udi", "raw"),
    ), "{staging}.stg_devices as d", "d.patient_id, d.device_id"),
    Table("supplies", (
        _c("DATE", "s.supply_date", "date"),
        _c("PATIENT", "s.patient_id", "id"),
        _c("ENCOUNTER"),
        _c("CODE", "s.code"),
        _c("DESCRIPTION", "s.description"),
        _c("QUANTITY", "s.quantity", "int"),
    ), "{staging}.stg_supplies as s", "s.patient_id, s.supply_date, s.supply_delivery_id"),
    Table("imaging_studies", (
        _c("Id", "im.imaging_study_id", "id"),
        _c("DATE", "im.date_at", "ts"),
        _c("PATIENT", "im.patient_id", "id"),
        _c("ENCOUNTER", "im.encounter_id", "id"),
        _c("SERIES_UID", "im.series_uid", "raw"),
        _c("BODYSITE_CODE", "im.bodysite_code"),
        _c("BODYSITE_DESCRIPTION", "im.bodysite_description", "raw"),
        _c("MODALITY_CODE", "im.modality_code"),
        _c("MODALITY_DESCRIPTION", "im.modality_description", "raw"),
        _c("INSTANCE_UID", "im.instance_uid", "raw"),
        _c("SOP_CODE", "im.sop_code", "raw"),
        _c("SOP_DESCRIPTION", "im.sop_description", "raw"),
        _c("PROCEDURE_CODE", "im.procedure_code"),
    ), "{staging}.stg_imaging_studies as im", "im.patient_id, im.date_at, im.imaging_instance_key"),
    Table("claims", (
        _c("Id", "cl.claim_id", "id"),
        _c("PATIENTID", "cl.patient_id", "id"),
        _c("PROVIDERID", "cl.provider_id", "id"),
        # Synthea leaves the insurance id empty for the uninsured.
        _c("PRIMARYPATIENTINSURANCEID",
           "case when cl.payer_name <> 'NO_INSURANCE' then cl.payer_id end", "id"),
        *_empty_columns("SECONDARYPATIENTINSURANCEID", "DEPARTMENTID", "PATIENTDEPARTMENTID"),
        *(_c(f"DIAGNOSIS{i}", f"cl.diagnosis_{i}") for i in range(1, 9)),
        _c("REFERRINGPROVIDERID"),
        _c("APPOINTMENTID", "cl.encounter_id", "id"),
        _c("CURRENTILLNESSDATE"),
        _c("SERVICEDATE", "cl.service_date_at", "ts"),
        _c("SUPERVISINGPROVIDERID", "cl.provider_id", "id"),
        *_empty_columns("STATUS1", "STATUS2", "STATUSP", "OUTSTANDING1", "OUTSTANDING2",
                        "OUTSTANDINGP", "LASTBILLEDDATE1", "LASTBILLEDDATE2", "LASTBILLEDDATEP",
                        "HEALTHCARECLAIMTYPEID1", "HEALTHCARECLAIMTYPEID2"),
    ), "{intermediate}.int_claims_enriched as cl",
       "cl.patient_id, cl.service_date_at, cl.claim_id"),
    Table("claims_transactions", (
        _c("ID", "t.claim_transaction_id", "id"),
        _c("CLAIMID", "t.claim_id", "id"),
        _c("CHARGEID", "t.charge_id", "int"),
        _c("PATIENTID", "t.patient_id", "id"),
        _c("TYPE", "t.transaction_type"),
        _c("AMOUNT", "t.amount", "money"),
        _c("METHOD"),
        _c("FROMDATE", "t.from_date_at", "ts"),
        _c("TODATE", "t.to_date_at", "ts"),
        _c("PLACEOFSERVICE", "t.place_of_service", "id"),
        _c("PROCEDURECODE", "t.procedure_code"),
        *_empty_columns("MODIFIER1", "MODIFIER2", "DIAGNOSISREF1", "DIAGNOSISREF2",
                        "DIAGNOSISREF3", "DIAGNOSISREF4", "UNITS", "DEPARTMENTID"),
        _c("NOTES", "t.procedure_description"),
        _c("UNITAMOUNT", "t.amount", "money"),
        *_empty_columns("TRANSFEROUTID", "TRANSFERTYPE", "PAYMENTS", "ADJUSTMENTS",
                        "TRANSFERS", "OUTSTANDING"),
        _c("APPOINTMENTID", "t.appointment_id", "id"),
        _c("LINENOTE"),
        _c("PATIENTINSURANCEID"),
        _c("FEESCHEDULEID"),
        _c("PROVIDERID", "cl.provider_id", "id"),
        _c("SUPERVISINGPROVIDERID", "cl.provider_id", "id"),
    ), "{staging}.stg_claims_transactions as t left join {intermediate}.int_claims_enriched"
       " as cl on t.claim_id = cl.claim_id"
       " where t.item_kind not in ('diagnosis', 'information')",
       "t.patient_id, t.from_date_at, t.claim_id, t.charge_id"),
    Table("payers", (
        _c("Id", "py.payer_id", "id"),
        _c("NAME", "py.name"),
        *_empty_columns("OWNERSHIP", "ADDRESS", "CITY", "STATE_HEADQUARTERED", "ZIP", "PHONE",
                        "AMOUNT_COVERED", "AMOUNT_UNCOVERED", "REVENUE", "COVERED_ENCOUNTERS",
                        "UNCOVERED_ENCOUNTERS", "COVERED_MEDICATIONS", "UNCOVERED_MEDICATIONS",
                        "COVERED_PROCEDURES", "UNCOVERED_PROCEDURES", "COVERED_IMMUNIZATIONS",
                        "UNCOVERED_IMMUNIZATIONS", "UNIQUE_CUSTOMERS", "QOLS_AVG",
                        "MEMBER_MONTHS"),
    ), "{staging}.stg_payers as py", "py.name"),
    Table("payer_transitions", (
        _c("PATIENT", "pt.patient_id", "id"),
        _c("MEMBERID"),
        _c("START_DATE", "pt.start_at", "ts"),
        _c("END_DATE", "pt.end_at", "ts"),
        _c("PAYER", "pt.payer_id", "id"),
        _c("SECONDARY_PAYER"),
        _c("PLAN_OWNERSHIP"),
        _c("OWNER_NAME"),
    ), "{staging}.stg_payer_transitions as pt", "pt.patient_id, pt.start_at"),
    Table("providers", (
        _c("Id", "pr.practitioner_id", "id"),
        _c("ORGANIZATION", "pr.organization_id", "id"),
        _c("NAME", "pr.name"),
        _c("GENDER", "pr.gender"),
        _c("SPECIALITY", "pr.speciality"),
        _c("ADDRESS", "pr.address"),
        _c("CITY", "pr.city"),
        _c("STATE", "pr.state"),
        _c("ZIP", "pr.zip"),
        _c("LAT", "pr.lat", "float"),
        _c("LON", "pr.lon", "float"),
        _c("ENCOUNTERS", "pr.encounters", "int"),
        _c("PROCEDURES"),
    ), "{staging}.stg_providers as pr", "pr.practitioner_id"),
    Table("organizations", (
        _c("Id", "org.organization_id", "id"),
        _c("NAME", "org.name"),
        _c("ADDRESS", "org.address"),
        _c("CITY", "org.city"),
        _c("STATE", "org.state"),
        _c("ZIP", "org.zip"),
        _c("LAT", "org.lat", "float"),
        _c("LON", "org.lon", "float"),
        _c("PHONE", "org.phone"),
        _c("REVENUE"),
        _c("UTILIZATION", "org.utilization", "int"),
    ), "{staging}.stg_organizations as org", "org.organization_id"),
)

TABLE_NAMES = tuple(t.name for t in TABLES)


def table_sql(table: Table, schemas: dict[str, str]) -> str:
    """The SELECT for one table: one output column per CSV column with an expression."""
    selected = [f"{c.expr} as c{i}" for i, c in enumerate(table.columns) if c.expr is not None]
    if table.name == "observations":
        selected += ["o.value_number as value_number", "o.value_text as value_text"]
    source = table.source.format(**schemas)
    return f"select {', '.join(selected)} from {source} order by {table.order_by}"


def _row_formatter(table: Table, names: Sequence[str]) -> Callable[[tuple], list[str]]:
    position = {name: i for i, name in enumerate(names)}
    plan: list[tuple[int | None, Formatter]] = []
    for i, column in enumerate(table.columns):
        if column.expr is None:
            plan.append((None, _empty))
        elif column.kind == "value":
            plan.append((None, _empty))  # placeholder, filled below
        else:
            plan.append((position[f"c{i}"], FORMATS[column.kind]))
    value_at = next((i for i, c in enumerate(table.columns) if c.kind == "value"), None)
    number_pos = position.get("value_number")
    text_pos = position.get("value_text")

    def format_row(row: tuple) -> list[str]:
        out = [fmt(row[pos]) if pos is not None else "" for pos, fmt in plan]
        if value_at is not None and number_pos is not None and text_pos is not None:
            number = row[number_pos]
            out[value_at] = _one_decimal(number) if number is not None else clean(row[text_pos])
        return out

    return format_row


@dataclass
class ExportResult:
    out_dir: Path
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def export_tables(cursor: Any, out_dir: Path, *, schemas: dict[str, str] | None = None,
                  tables: Sequence[str] | None = None, batch_rows: int = 10_000) -> ExportResult:
    """Write the CSV tables through a DB-API cursor on the warehouse."""
    schemas = schemas or {"staging": "staging", "intermediate": "intermediate",
                          "marts": "marts"}
    wanted = set(tables or TABLE_NAMES)
    unknown = wanted - set(TABLE_NAMES)
    if unknown:
        raise FhirflowError(f"unknown table(s) {', '.join(sorted(unknown))}; "
                            f"choose from {', '.join(TABLE_NAMES)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = ExportResult(out_dir=out_dir)
    for table in TABLES:
        if table.name not in wanted:
            continue
        try:
            cursor.execute(table_sql(table, schemas))
        except Exception as exc:  # the driver's own error types differ per warehouse
            raise FhirflowError(f"cannot read {table.name} from the warehouse "
                                f"({first_line(exc)}); "
                                "run `fhirflow transform` first") from None
        names = [d[0].lower() for d in cursor.description]
        format_row = _row_formatter(table, names)
        count = 0
        with (out_dir / f"{table.name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(table.headers)
            for batch in _batches(cursor, batch_rows):
                writer.writerows(format_row(row) for row in batch)
                count += len(batch)
        result.rows[table.name] = count
    result.seconds = time.perf_counter() - started
    return result


def _batches(cursor: Any, size: int) -> Iterator[list[tuple]]:
    while True:
        batch = cursor.fetchmany(size)
        if not batch:
            return
        yield batch


def export_csv(settings: Settings, out_dir: Path,
               tables: Sequence[str] | None = None) -> ExportResult:
    """Export from the configured warehouse (DuckDB file or Snowflake)."""
    if settings.warehouse == "duckdb":
        import duckdb

        if not settings.duckdb_path.exists():
            raise FhirflowError(f"no warehouse at {settings.duckdb_path}; run `fhirflow run` "
                                "or `fhirflow transform` first")
        try:
            try:
                con = duckdb.connect(str(settings.duckdb_path), read_only=True)
            except duckdb.ConnectionException:
                # dbt-duckdb keeps a read-write connection open in this process (after
                # `fhirflow run`), and DuckDB refuses a second one with another configuration.
                con = duckdb.connect(str(settings.duckdb_path))
        except duckdb.IOException as exc:
            raise FhirflowError(f"cannot open {settings.duckdb_path}: "
                                f"{first_line(exc)}") from None
        try:
            return export_tables(con.cursor(), out_dir, tables=tables)
        finally:
            con.close()
    return _export_snowflake(settings, out_dir, tables)


def _export_snowflake(settings: Settings, out_dir: Path,
                      tables: Sequence[str] | None) -> ExportResult:
    import snowflake.connector

    params: dict[str, Any] = {
        "account": settings.snowflake_account,
        "user": settings.snowflake_user,
        "password": (settings.snowflake_password.get_secret_value()
                     if settings.snowflake_password else None),
        "database": settings.snowflake_database,
        "warehouse": settings.snowflake_warehouse,
        "role": settings.snowflake_role,
    }
    if settings.snowflake_host:
        params["host"] = settings.snowflake_host
    if settings.snowflake_port:
        params["port"] = settings.snowflake_port
    if settings.snowflake_protocol:
        params["protocol"] = settings.snowflake_protocol
    try:
        con = snowflake.connector.connect(**{k: v for k, v in params.items() if v is not None})
    except Exception as exc:
        raise FhirflowError(f"cannot connect to Snowflake: {first_line(exc)}") from None
    try:
        return export_tables(con.cursor(), out_dir, tables=tables)
    finally:
        con.close()
