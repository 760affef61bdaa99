"""The HL7 SQL on FHIR v2 test suite: run its files and report in its test-report format.

Each file holds FHIR `resources` and `tests`; a test is a view with the rows it must give
(`expect`, compared as a multiset: the suite does not fix row order), or `expectCount`,
`expectColumns` (names in order) or `expectError` (compiling or running must fail).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhirflow.errors import FhirflowError, first_line
from fhirflow.views.compiler import compile_view
from fhirflow.views.definition import InvalidViewError
from fhirflow.views.engines import Engine


@dataclass
class TestResult:
    file: str
    name: str
    passed: bool
    error: str | None = None
    tags: tuple[str, ...] = ()


@dataclass
class SuiteResult:
    dialect: str
    results: list[TestResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def total(self) -> int:
        return len(self.results)

    def report(self) -> dict[str, Any]:
        """The suite's test-report format: {file: {"tests": [{name, result}]}}."""
        out: dict[str, Any] = {}
        for r in self.results:
            result: dict[str, Any] = {"passed": r.passed}
            if r.error:
                result["error"] = r.error
            out.setdefault(r.file, {"tests": []})["tests"].append({"name": r.name,
                                                                  "result": result})
        return out


def _normal(value: Any) -> Any:
    """A comparable form: numbers by value, lists in order, objects by key."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return ("v", value)
    if isinstance(value, int | float):
        number = float(value)
        return ("n", round(number, 9) if math.isfinite(number) else number)
    if isinstance(value, list):
        return ("l", tuple(_normal(v) for v in value))
    if isinstance(value, dict):
        return ("o", tuple(sorted((k, _normal(v)) for k, v in value.items())))
    return ("v", str(value))


def _row_key(row: dict[str, Any]) -> tuple:
    return tuple(sorted((k, _normal(v)) for k, v in row.items()))


def compare(expected: list[dict], actual: list[dict]) -> str | None:
    """None when the rows are the same multiset; otherwise what differs."""
    want = sorted((_row_key(r) for r in expected), key=repr)
    got = sorted((_row_key(r) for r in actual), key=repr)
    if want == got:
        return None
    missing = [r for r in want if r not in got]
    extra = [r for r in got if r not in want]
    return (f"expected {len(want)} rows, got {len(got)}; "
            f"first missing {_show(missing)}, first unexpected {_show(extra)}")


def _show(rows: list[tuple]) -> str:
    if not rows:
        return "none"
    return json.dumps({k: v[1] if v[0] != "l" else [x[1] for x in v[1]] for k, v in rows[0]})


def run_test(engine: Engine, test: dict[str, Any]) -> str | None:
    """None when the test passes, else why not."""
    expect_error = bool(test.get("expectError"))
    try:
        compiled = compile_view(test.get("view"), engine.dialect, engine.source)
        rows = list(engine.rows(compiled))
    except InvalidViewError as exc:
        return None if expect_error else f"view rejected: {exc}"
    except FhirflowError:
        raise
    except Exception as exc:  # noqa: BLE001 - the database's error for a query at run time
        return None if expect_error else f"query failed: {first_line(exc)}"
    if expect_error:
        return f"expected an error, got {len(rows)} rows"
    if "expectColumns" in test and compiled.names != test["expectColumns"]:
        return f"expected columns {test['expectColumns']}, got {compiled.names}"
    if "expectCount" in test and len(rows) != test["expectCount"]:
        return f"expected {test['expectCount']} rows, got {len(rows)}"
    if "expect" in test:
        return compare(test["expect"], rows)
    return None


def run_file(engine: Engine, path: Path,
             only: Callable[[dict], bool] | None = None) -> list[TestResult]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FhirflowError(f"{path}: not a test file ({first_line(exc)})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tests"), list):
        raise FhirflowError(f"{path}: not a SQL on FHIR test file (no tests list)")
    engine.load(doc.get("resources") or [])
    results = []
    for test in doc["tests"]:
        if only is not None and not only(test):
            continue
        error = run_test(engine, test)
        results.append(TestResult(path.name, str(test.get("title", "")), error is None, error,
                                  tuple(test.get("tags") or ())))
    return results


def run_suite(engine: Engine, folder: Path) -> SuiteResult:
    files = sorted(folder.glob("*.json")) if folder.is_dir() else [folder]
    if not files:
        raise FhirflowError(f"no test files (*.json) in {folder}")
    result = SuiteResult(engine.dialect)
    for path in files:
        result.results.extend(run_file(engine, path))
    return result
