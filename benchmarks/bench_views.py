"""Benchmark: SQL on FHIR views on DuckDB against hand-written DuckDB SQL for the same columns.

Generates a corpus with fhirflow's own generator (about --gb of bundles), loads it the way
`fhirflow views run --input` does (one in-memory table, one row per resource), then for
three starter views (patient_demographics: many columns and extension lookups;
observations: unionAll over components; blood_pressure: a where filter and component
searches) materialises the compiled view and a hand-written query for the same columns
(CREATE TABLE AS, so every column is computed), checks that both give the same rows, and
reports medians of --repeats alternating runs: rows/s, MB/s of the resources read, and the
ratio of the view's time to the hand-written query's (median of the per-pair ratios).

    .venv/bin/python benchmarks/bench_views.py [--gb 1.0] [--repeats 3] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from fhirflow.generate import generate_patients
from fhirflow.views.compiler import compile_view
from fhirflow.views.inputs import load_resources

REPO = Path(__file__).resolve().parents[1]
VIEWS = REPO / "dbt" / "views"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
GEO = "http://hl7.org/fhir/StructureDefinition/geolocation"
KEY = "nullif(regexp_extract({ref}, '^urn:uuid:(.+)$', 1), '')"

# What a DuckDB user would write for the same columns (same meaning on this data).
HAND_WRITTEN = {
    "patient_demographics": f"""
        with patients as (
            select
                resource as r,
                list_filter(json_extract(resource, '$.name[*]'),
                            lambda n: n ->> 'use' = 'official') as official,
                json_extract(resource, '$.extension[*]') as ext,
                json_extract(resource, '$.address[0]') as addr
            from resources where resource_type = 'Patient'
        ),
        ext as (
            select *,
                list_filter(ext, lambda e: e ->> 'url' = '{US_CORE}us-core-race')[1] as race,
                list_filter(ext, lambda e: e ->> 'url' = '{US_CORE}us-core-ethnicity')[1] as eth,
                list_filter(json_extract(addr, '$.extension[*]'),
                            lambda e: e ->> 'url' = '{GEO}')[1] as geo
            from patients
        )
        select
            r ->> 'id' as patient_id,
            list_filter(json_extract(r, '$.identifier[*]'), lambda i: list_contains(
                json_extract_string(i, '$.type.coding[*].code'), 'SS'))[1] ->> 'value' as ssn,
            flatten(list_transform(official, lambda n: json_extract_string(n, '$.prefix[*]')))[1]
                as prefix,
            flatten(list_transform(official, lambda n: json_extract_string(n, '$.given[*]')))[1]
                as given_name,
            list_filter(list_transform(official, lambda n: n ->> 'family'),
                        lambda f: f is not null)[1] as family_name,
            list_filter(list_transform(json_extract(r, '$.name[*]'), lambda n: case
                when n ->> 'use' = 'maiden' then n ->> 'family' end), lambda f: f is not null)[1]
                as maiden_name,
            try_cast(r ->> 'birthDate' as date) as birth_date,
            r ->> 'deceasedDateTime' as deceased_at,
            r ->> 'gender' as gender,
            list_filter(ext, lambda e: e ->> 'url' = '{US_CORE}us-core-birthsex')[1]
                ->> 'valueCode' as birth_sex,
            list_filter(json_extract(race, '$.extension[*]'),
                        lambda e: e ->> 'url' = 'ombCategory')[1] ->> '$.valueCoding.code'
                as race_code,
            list_filter(json_extract(race, '$.extension[*]'),
                        lambda e: e ->> 'url' = 'text')[1] ->> 'valueString' as race_text,
            list_filter(json_extract(eth, '$.extension[*]'),
                        lambda e: e ->> 'url' = 'ombCategory')[1] ->> '$.valueCoding.code'
                as ethnicity_code,
            list_filter(json_extract(eth, '$.extension[*]'),
                        lambda e: e ->> 'url' = 'text')[1] ->> 'valueString' as ethnicity_text,
            r ->> '$.maritalStatus.coding[0].code' as marital_status,
            addr ->> 'city' as city,
            addr ->> 'state' as state,
            addr ->> 'postalCode' as postal_code,
            cast(list_filter(json_extract(geo, '$.extension[*]'),
                             lambda e: e ->> 'url' = 'latitude')[1] -> 'valueDecimal' as double)
                as latitude,
            cast(list_filter(json_extract(geo, '$.extension[*]'),
                             lambda e: e ->> 'url' = 'longitude')[1] -> 'valueDecimal' as double)
                as longitude
        from ext
    """,
    "observations": f"""
        with observations as (
            select resource as r from resources where resource_type = 'Observation'
        ),
        components as (
            select r, unnest(cs) as c, unnest(range(len(cs))) as i
            from (select r, json_extract(r, '$.component[*]') as cs from observations)
        ),
        observation_values as (
            select r, r as c, -1 as i from observations
            where coalesce(json_array_length(r, '$.component'), 0) = 0
            union all
            select r, c, i from components
        )
        select
            r ->> 'id' as observation_id,
            {KEY.format(ref="r ->> '$.subject.reference'")} as patient_id,
            {KEY.format(ref="r ->> '$.encounter.reference'")} as encounter_id,
            r ->> 'status' as status,
            r ->> '$.category[0].coding[0].code' as category,
            r ->> 'effectiveDateTime' as effective_at,
            i as component_index,
            c ->> '$.code.coding[0].code' as code,
            c ->> '$.code.coding[0].display' as display,
            cast(c -> '$.valueQuantity.value' as double) as value_number,
            c ->> '$.valueQuantity.unit' as unit,
            c ->> '$.valueCodeableConcept.coding[0].code' as value_code,
            coalesce(c ->> '$.valueCodeableConcept.coding[0].display', c ->> 'valueString')
                as value_text
        from observation_values
    """,
    "blood_pressure": f"""
        with panels as (
            select resource as r, json_extract(resource, '$.component[*]') as cs
            from resources
            where resource_type = 'Observation'
              and len(list_filter(json_extract(resource, '$.code.coding[*]'), lambda k:
                  k ->> 'system' = 'http://loinc.org' and k ->> 'code' = '85354-9')) > 0
        ),
        parts as (
            select r,
                list_filter(cs, lambda c: len(list_filter(json_extract(c, '$.code.coding[*]'),
                    lambda k: k ->> 'system' = 'http://loinc.org' and k ->> 'code' = '8480-6'))
                    > 0)[1] as sys,
                list_filter(cs, lambda c: len(list_filter(json_extract(c, '$.code.coding[*]'),
                    lambda k: k ->> 'system' = 'http://loinc.org' and k ->> 'code' = '8462-4'))
                    > 0)[1] as dia
            from panels
        )
        select
            r ->> 'id' as observation_id,
            {KEY.format(ref="r ->> '$.subject.reference'")} as patient_id,
            {KEY.format(ref="r ->> '$.encounter.reference'")} as encounter_id,
            r ->> 'effectiveDateTime' as effective_at,
            cast(sys -> '$.valueQuantity.value' as double) as systolic,
            sys ->> '$.valueQuantity.code' as systolic_unit,
            cast(dia -> '$.valueQuantity.value' as double) as diastolic,
            dia ->> '$.valueQuantity.code' as diastolic_unit
        from parts
    """,
}


def generate(target: Path, gigabytes: float) -> tuple[int, int]:
    """Patients and bytes written, in batches until the corpus reaches `gigabytes`."""
    patients = written = 0
    batch = 0
    while written < gigabytes * 1e9:
        result = generate_patients(target / f"batch{batch}", patients=100, seed=1000 + batch)
        patients += result.patients
        written += result.bytes
        batch += 1
    return patients, written


def timed(con: duckdb.DuckDBPyConnection, sql: str, table: str) -> float:
    started = time.perf_counter()
    con.execute(f"create or replace temp table {table} as {sql}")
    return time.perf_counter() - started


def paired(con: duckdb.DuckDBPyConnection, view: str, hand: str,
           repeats: int) -> tuple[float, float, float]:
    """Medians of the view's and the hand-written query's times, and of their ratio, from
    runs that alternate (on a shared machine the load drifts; pairs see the same load)."""
    view_runs, hand_runs, ratios = [], [], []
    for i in range(repeats):
        if i % 2:
            hand_s, view_s = timed(con, hand, "bench_hand"), timed(con, view, "bench_view")
        else:
            view_s, hand_s = timed(con, view, "bench_view"), timed(con, hand, "bench_hand")
        view_runs.append(view_s)
        hand_runs.append(hand_s)
        ratios.append(view_s / hand_s)
    return statistics.median(view_runs), statistics.median(hand_runs), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-views-"))
    try:
        started = time.perf_counter()
        patients, written = generate(work / "corpus", args.gb)
        print(f"generated {patients} patients: {written / 1e6:,.0f} MB in "
              f"{time.perf_counter() - started:.0f} s")
        con = duckdb.connect()
        started = time.perf_counter()
        loaded = load_resources(con, [work / "corpus"])
        seconds = time.perf_counter() - started
        print(f"load (views run --input): {loaded.resources:,} resources from {loaded.files} "
              f"files in {seconds:.1f} s, {loaded.bytes / 1e6 / seconds:.0f} MB/s")
        print(f"\n{'view':22} {'rows':>9} {'view s':>7} {'hand s':>7} {'ratio':>6} "
              f"{'rows/s':>10} {'MB/s':>7}")
        for name, hand in HAND_WRITTEN.items():
            view = json.loads((VIEWS / f"{name}.json").read_text())
            compiled = compile_view(view, "duckdb")
            mb = con.execute("select sum(strlen(cast(resource as varchar))) from resources "
                             "where resource_type = ?", [view["resource"]]).fetchone()[0] / 1e6
            view_s, hand_s, ratio = paired(con, compiled.sql, hand, args.repeats)
            rows = con.execute("select count(*) from bench_view").fetchone()[0]
            differ = con.execute("select count(*) from ((select * from bench_view except all "
                                 "select * from bench_hand) union all (select * from bench_hand "
                                 "except all select * from bench_view))").fetchone()[0]
            note = "" if differ == 0 else f"  ({differ} rows differ!)"
            print(f"{name:22} {rows:>9,} {view_s:>7.2f} {hand_s:>7.2f} {ratio:>6.2f} "
                  f"{rows / view_s:>10,.0f} {mb / view_s:>7.0f}{note}")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
