"""The load ledger and the refusal of builds that would mix loads, on small graphs."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirflow.transform.checked import consistency_hint
from fhirflow.transform.consistency import (
    NO_LOAD,
    Built,
    InconsistentBuild,
    Node,
    check,
    ledger_path,
    plan,
    read_ledger,
    record,
    write_ledger,
)
from fhirflow.transform.runner import Selection

RAW = "source.p.raw.fhir_bundles"


def node(name: str, layer: str, *parents: str, materialized: str = "table",
         kind: str = "model") -> Node:
    return Node(f"{kind}.p.{name}", kind, layer, tuple(f"model.p.{p}" if "." not in p else p
                                                       for p in parents), materialized)


GRAPH = {n.unique_id: n for n in [
    Node(RAW, "source", "raw"),
    node("us_states", "seeds", kind="seed"),
    node("base", "staging", RAW, materialized="incremental"),
    node("stg_a", "staging", "base", "seed.p.us_states", materialized="incremental"),
    node("stg_b", "staging", "base", materialized="incremental"),
    node("int_x", "intermediate", "stg_b"),
    node("fct", "marts", "stg_a", "int_x"),
    node("v", "views", "stg_a", "int_x", materialized="view"),
    node("m2", "marts", "v"),
    node("ref_only", "marts", "seed.p.us_states"),
]}
STAGING = ["model.p.base", "model.p.stg_a", "model.p.stg_b"]
MARTS = ["model.p.fct", "model.p.m2"]


def ledger_at(load: str) -> dict[str, Built]:
    return {uid: Built(load, True) for uid, n in GRAPH.items() if n.holds_data}


def test_a_full_build_reflects_the_new_load() -> None:
    predicted, conflicts = plan(GRAPH, ledger_at("L1"), list(GRAPH), "L2")
    assert conflicts == []
    assert predicted["model.p.fct"] == predicted["model.p.int_x"] == "L2"
    assert predicted["model.p.ref_only"] == NO_LOAD  # seeds belong to no load


def test_marts_after_staging_alone_are_refused_naming_the_layer_behind() -> None:
    ledger = ledger_at("L1")
    predicted = check(GRAPH, ledger, STAGING, "L2", hint="hint")
    ledger = record(ledger, predicted, {uid: "success" for uid in STAGING})
    assert ledger["model.p.stg_a"] == Built("L2", True, ledger["model.p.stg_a"].at)
    with pytest.raises(InconsistentBuild) as refused:
        check(GRAPH, ledger, ["model.p.fct"], "L2", hint="run this instead")
    assert str(refused.value) == (
        "refusing to build: intermediate is behind staging: marts model fct would read int_x "
        "(built from load L1) with stg_a (load L2); run this instead")
    # what a view reads counts too: m2 reads int_x (L1) and stg_a (L2) through it
    _, conflicts = plan(GRAPH, ledger, ["model.p.m2"], "L2")
    assert [(c.model.name, c.behind.name) for c in conflicts] == [("m2", "int_x")]
    # building intermediate with marts (dbt's `+`) is consistent
    predicted = check(GRAPH, ledger, ["model.p.int_x", *MARTS], "L2", hint="")
    assert predicted["model.p.fct"] == "L2"


def test_a_staging_model_alone_reads_base_not_raw() -> None:
    """No false alarm: stg_a rebuilt without base reflects base's load, not RAW's newest."""
    predicted = check(GRAPH, ledger_at("L1"), ["model.p.stg_a"], "L2", hint="")
    assert predicted == {"model.p.stg_a": "L1"}


def test_a_failed_or_unrecorded_input_is_refused() -> None:
    ledger = ledger_at("L1")
    ledger = record(ledger, {"model.p.stg_b": "L1"}, {"model.p.stg_b": "error"})
    assert ledger["model.p.stg_b"].ok is False and ledger["model.p.stg_b"].load == "L1"
    with pytest.raises(InconsistentBuild, match="staging is behind: intermediate model int_x "
                                                "would read stg_b, whose last build failed"):
        check(GRAPH, ledger, ["model.p.int_x"], "L1", hint="")
    with pytest.raises(InconsistentBuild, match="staging has no recorded build"):
        check(GRAPH, {}, ["model.p.int_x"], "L1", hint="")


def test_a_build_started_counts_as_failed_until_it_finishes() -> None:
    """The ledger is written ahead, so a build that dies half-way leaves its models unusable."""
    started = record(ledger_at("L1"), {"model.p.stg_a": "L2"}, {"model.p.stg_a": "started"})
    assert started["model.p.stg_a"].ok is False
    _, conflicts = plan(GRAPH, started, ["model.p.fct"], "L2")
    assert conflicts and conflicts[0].behind.name == "stg_a"


def test_ledger_round_trip_per_target(tmp_path: Path) -> None:
    path = ledger_path(tmp_path)
    assert read_ledger(path, "duckdb") == {}
    write_ledger(path, "duckdb", {"model.p.a": Built("L1", True, "t")})
    write_ledger(path, "snowflake", {"model.p.a": Built("L9", False, "t")})
    assert read_ledger(path, "duckdb") == {"model.p.a": Built("L1", True, "t")}
    assert read_ledger(path, "snowflake")["model.p.a"].ok is False
    path.write_text("{not json")
    assert read_ledger(path, "duckdb") == {}


def test_hints_use_dbts_graph_operator() -> None:
    assert consistency_hint(Selection("tag:marts"), "marts") == (
        "build marts with what it reads: `fhirflow transform --select +tag:marts`")
    assert consistency_hint(Selection("fct_a +fct_b"), None) == (
        "build what it reads too: `fhirflow transform --select '+fct_a +fct_b'`")
