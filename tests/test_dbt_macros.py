"""The dbt macros, Tuva-style: macros/cross_db/ holds only dispatched macros (DuckDB and
Snowflake bodies, and a default__ that stops compilation), FHIR helpers live in
macros/fhir/, overrides in macros/overrides/, and _macros.yml documents every macro with
exactly the arguments it takes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MACROS = REPO / "dbt" / "macros"
MACRO_DEF = re.compile(r"\{%-?\s*macro\s+(\w+)\s*\(([^)]*)\)")
CROSS_DB = sorted(p.stem for p in (MACROS / "cross_db").glob("*.sql"))


def _defined(path: Path) -> dict[str, list[str]]:
    """Macro name -> argument names, as the file defines them."""
    found = {}
    for name, args in MACRO_DEF.findall(path.read_text()):
        found[name] = [a.split("=")[0].strip() for a in args.split(",") if a.strip()]
    return found


def test_cross_db_holds_only_dispatched_macros() -> None:
    assert CROSS_DB, "no cross-database macros found"
    for name in CROSS_DB:
        path = MACROS / "cross_db" / f"{name}.sql"
        defined = _defined(path)
        assert set(defined) == {name, f"duckdb__{name}", f"snowflake__{name}",
                                f"default__{name}"}, path
        assert f"adapter.dispatch('{name}', 'fhirflow')" in path.read_text(), path
        # Every body takes the dispatcher's arguments, in its order.
        assert len({tuple(args) for args in defined.values()}) == 1, defined


def test_helpers_and_overrides_have_their_folders() -> None:
    assert {p.stem for p in (MACROS / "fhir").glob("*.sql")} == {
        "resources_of_type", "reference_id", "local_date", "observation_value_fields",
        "delete_reread_resources", "snomed_semantic_tag"}
    assert {p.stem for p in (MACROS / "overrides").glob("*.sql")} == {
        "generate_schema_name", "snowflake__get_merge_sql"}
    assert not list(MACROS.glob("*.sql")), "macros belong in a folder of macros/"


def test_macros_yml_documents_every_macro_and_argument() -> None:
    # _macros.yml, and the generated macros of the views (macros/views/_views_macros.yml)
    documented = {m["name"]: m for doc in sorted(MACROS.rglob("_*macros.yml"))
                  for m in yaml.safe_load(doc.read_text())["macros"]}
    defined: dict[str, list[str]] = {}
    for path in MACROS.rglob("*.sql"):
        defined.update(_defined(path))
    assert set(documented) == set(defined)
    for name, args in defined.items():
        entry = documented[name]
        assert entry.get("description", "").strip(), name
        assert [a["name"] for a in entry.get("arguments", [])] == args, name
        assert all(a.get("description", "").strip() for a in entry.get("arguments", [])), name


@pytest.fixture(scope="module")
def compile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One target folder for the module, so dbt's partial parse spares re-parsing."""
    return tmp_path_factory.mktemp("dbt-compile")


def _compile_inline(compile_dir: Path, sql: str) -> tuple[Any, str]:
    from dbt.cli.main import dbtRunner

    errors: list[str] = []

    def collect(event: Any) -> None:
        if event.info.level == "error":
            errors.append(event.info.msg)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FHIRFLOW_DUCKDB_PATH", str(compile_dir / "compile.duckdb"))
        result = dbtRunner(callbacks=[collect]).invoke([
            "--quiet", "compile", "--project-dir", str(REPO / "dbt"),
            "--profiles-dir", str(REPO / "dbt"), "--target-path", str(compile_dir / "target"),
            "--log-path", str(compile_dir / "logs"), "--inline", sql])
    return result, "\n".join(errors)


@pytest.mark.parametrize("name", CROSS_DB)
def test_default_body_stops_compilation_naming_the_macro(compile_dir: Path, name: str) -> None:
    args = _defined(MACROS / "cross_db" / f"{name}.sql")[f"default__{name}"]
    call = f"{{{{ fhirflow.default__{name}({', '.join(repr('x') for _ in args)}) }}}}"
    result, errors = _compile_inline(compile_dir, f"select {call}")
    assert not result.success
    assert f"{name} has no implementation for the 'duckdb' adapter" in errors, errors
    assert f"dbt/macros/cross_db/{name}.sql" in errors, errors


def test_dispatch_renders_the_duckdb_bodies(compile_dir: Path) -> None:
    result, errors = _compile_inline(
        compile_dir,
        "select {{ json_text('r', 'code.coding[0].code') }}, {{ json_number('r', 'x') }}")
    assert result.success, errors
    compiled = result.result.results[0].node.compiled_code
    assert "json_extract_string(r, '$.code.coding[0].code')" in compiled
    assert "try_cast(json_extract_string(r, '$.x') as double)" in compiled
