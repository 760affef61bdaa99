"""The 18 CSV tables: each column's header (Synthea 3.x order), the SQL expression over the
staging layer (or the intermediate models and marts that resolve references, costs and reasons)
and its value format. The SQL is plain enough for DuckDB and Snowflake alike."""

from __future__ import annotations

from dataclasses import dataclass


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
