"""Values in Synthea's CSV formats: local dates `YYYY-MM-DD`, UTC timestamps
`YYYY-MM-DDTHH:MM:SSZ`, money `%.2f`, observation numbers `%.1f`, and text passed through
Synthea's `clean()` (line breaks and commas become spaces). A column's `kind` in the table specs
names its format here."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fhirflow.export_csv.specs import Table

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


def row_formatter(table: Table, names: Sequence[str]) -> Callable[[tuple], list[str]]:
    """A function from a result row (columns `names`) to the table's CSV values."""
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
