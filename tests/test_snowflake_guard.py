"""A guard fakesnow cannot be: every model compiled for the Snowflake target, parsed with
sqlglot's Snowflake dialect, free of what Snowflake documents as unsupported.

The rules are in tests/_snowflake_guard.py; each is tested here on the form it must find and
on the form our macros write instead. The compile runs against a fakesnow server only because
dbt-snowflake needs a connection to compile (is_incremental() asks for the relation); no model
runs. The incremental branches are compiled and guarded after a build in
test_dbt_snowflake.py and test_snowflake_incremental.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _snowflake_guard import offences
from fhirflow.config import Settings, load_settings

# The form snowflake__json_array_find compiled to before json_array_lookup replaced it.
SUBQUERY_OVER_FLATTEN = (
    "select source.resource_id, (select min_by(found.value:value::varchar, found.index) "
    "from lateral flatten(input => source.resource:identifier) as found "
    "where found.value:system::varchar = 'x') as npi from source")
LOOKUP = (
    "select source.resource_id, min_by(found.value:value::varchar, case when "
    "found.value:system::varchar = 'x' then found.index end) as npi from source, "
    "lateral flatten(input => source.resource:identifier) as found group by 1")


@pytest.mark.parametrize(("bad", "good", "rule"), [
    (SUBQUERY_OVER_FLATTEN, LOOKUP, "subquery over FLATTEN"),
    # correlated inside FLATTEN, in a WHERE rather than a select list
    ("select s.id from s where 'x' = (select min(f.value::varchar) from "
     "lateral flatten(input => s.doc:ids) as f)",
     "select s.id from s, lateral flatten(input => s.doc:ids) as f where f.value::varchar = 'x'",
     "subquery over FLATTEN"),
    ("select o.id, (select i.v from inner_t as i where i.id = o.id) as v from outer_t as o",
     "select o.id, (select max(i.v) from inner_t as i where i.id = o.id) as v from outer_t as o",
     "correlated scalar subquery"),
    ("select o.id, (select max(i.v) from inner_t as i where i.id = o.id group by i.k) "
     "from outer_t as o",
     "select o.id from outer_t as o where exists (select 1 from inner_t as i "
     "where i.id = o.id group by i.k)",
     "correlated scalar subquery"),
    ("select o.id, (select max(i.v) from inner_t as i where i.id = o.id limit 1) "
     "from outer_t as o",
     "select o.id, (select max(i.v) from inner_t as i limit 1) from outer_t as o",
     "LIMIT/FETCH"),
    ("select try_cast(r.resource:valueQuantity.value as double) from r",
     "select try_cast(r.resource:valueQuantity.value::varchar as double) from r",
     "TRY_CAST of a non-string"),
    ("select try_cast(cast(r.n as int) as double) from r",
     "select try_cast(substr(r.t, 1, 10) as date) from r",
     "TRY_CAST of a non-string"),
    ("select json_extract_string(r.doc, '$.a') from r", "select r.doc:a::varchar from r",
     "DuckDB function json_extract_string"),
    ("select try(cast(r.t as date)) from r", "select try_cast(r.t as date) from r",
     "DuckDB function try"),
    ("select unnest(r.xs) from r",
     "select f.value from r, lateral flatten(input => r.xs) as f", "DuckDB function unnest"),
    ("select strftime(r.d, '%Y') from r", "select to_char(r.d, 'YYYY') from r",
     "DuckDB function strftime"),
    ("select get_path(r.doc, '$.a') from r", "select get_path(r.doc, 'a') from r",
     "DuckDB JSONPath"),
    ("select cast(r.doc as json) from r", "select cast(r.doc as variant) from r",
     "cast to JSON"),
    ("select list_filter(r.xs, lambda x: x > 1) from r",
     "select filter(r.xs, x -> x > 1) from r", "unparsable"),
    ("select made_up_fn(r.x) from r", "select try_to_timestamp(r.x) from r",
     "function made_up_fn() is unknown"),
    ("with recursive n (i) as (select 1 union select i + 1 from n where i < 3) select i from n",
     "with recursive n (i) as (select 1 union all select i + 1 from n where i < 3) "
     "select i from n", "recursive CTE n joins with UNION"),
])
def test_each_rule_finds_its_form_and_passes_ours(bad: str, good: str, rule: str) -> None:
    found = offences(bad)
    assert any(rule in line for line in found), found
    assert offences(good) == []


def test_uncorrelated_and_predicate_subqueries_pass() -> None:
    # The lookback filter of resources_of_type and the load filter of base_fhir_entries.
    assert offences(
        "select * from entries where _loaded_at >= coalesce((select dateadd(day, -7, "
        "max(_loaded_at)) from staging.stg_x), cast('1900-01-01' as timestamp))") == []
    assert offences("select * from b where b.load_id not in "
                    "(select distinct _load_id from staging.base_fhir_entries)") == []
    assert offences("select o.id from o where o.id in (select i.id from i where i.k = o.k)") == []


@pytest.fixture(scope="module")
def compiled(
    tmp_path_factory: pytest.TempPathFactory, fakesnow_server: Callable[..., Any]
) -> Iterator[tuple[Settings, dict[str, str]]]:
    """`dbt compile` of the whole project for the Snowflake target: path -> SQL of every
    model and data test (tests run on Snowflake too)."""
    pytest.importorskip("fakesnow")
    from fhirflow.transform import dbt_target_path, run_dbt

    home = tmp_path_factory.mktemp("snowflake-compile")
    with pytest.MonkeyPatch.context() as mp, fakesnow_server() as conn:
        for name in list(os.environ):
            if name.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_")):
                mp.delenv(name)
        settings = load_settings(
            home=home, warehouse="snowflake", snowflake_account=conn["account"],
            snowflake_user=conn["user"], snowflake_password=conn["password"],
            snowflake_host=conn["host"], snowflake_port=conn["port"],
            snowflake_protocol=conn["protocol"], snowflake_database="SYNTHEA_COMPILE",
            dbt_threads=1)
        result = run_dbt(settings, "compile")
        assert result.success, result.failures
        root = dbt_target_path(settings) / "compiled" / "fhirflow" / "models"
        yield settings, {str(p.relative_to(root)): p.read_text()
                         for p in sorted(root.rglob("*.sql"))}


def _model_files() -> set[str]:
    models = Path(__file__).resolve().parents[1] / "dbt" / "models"
    return {p.stem for p in models.rglob("*.sql")}


def test_every_model_compiles_for_snowflake(compiled: tuple[Settings, dict[str, str]]) -> None:
    _settings, sql = compiled
    # Data tests compile under <folder>/<models yml>/; models directly in their folder.
    models = {Path(p).stem: text for p, text in sql.items() if not Path(p).parent.suffix}
    assert set(models) == _model_files()
    assert len(sql) > len(models)  # the data tests too
    # Snowflake's macros, not DuckDB's (base_fhir_entries is a plain view since the load
    # flattens bundles; a staging model still flattens a resource's list).
    assert "lateral flatten" in models["stg_claims_transactions"]


def test_no_compiled_model_uses_what_snowflake_rejects(
    compiled: tuple[Settings, dict[str, str]],
) -> None:
    _settings, sql = compiled
    found = {name: lines for name, text in sql.items() if (lines := offences(text))}
    assert found == {}
