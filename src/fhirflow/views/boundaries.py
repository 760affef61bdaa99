"""lowBoundary() and highBoundary(): the least and greatest value a partial value could be.

A decimal's boundaries are half a unit of its last written digit either side (1.0 ->
0.95 and 1.05); a date, dateTime or time is filled out to the first or last instant it
covers, at millisecond precision, and a dateTime without a zone takes the earliest (+14:00)
or latest (-12:00) zone. A Period's are its start's low and its end's high boundary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhirflow.views.values import EMPTY, Val, json_scalar, typed

if TYPE_CHECKING:
    from fhirflow.views.dialects import Dialect
    from fhirflow.views.expressions import ExprCompiler, Scope

_DATE = r"^([0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?)"
_TIME_IN_DATETIME = r"T([0-9]{2}(:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?)"
_ZONE = r"(Z|[+-][0-9]{2}:[0-9]{2})$"


def boundary(c: ExprCompiler, focus: Val, low: bool, scope: Scope) -> Val:
    if focus.is_empty:
        return EMPTY
    if focus.many:
        items = c.as_list(focus)
        var = c.d.fresh()
        one = boundary(c, json_scalar(var, focus.fhir_type), low, scope)
        out = c.d.list_map(items, var, c.d.to_json(one.sql))
        return Val(out, one.kind, one.fhir_type, is_list=True, many=True)
    if focus.fhir_type == "Period":
        part = c.navigate(focus, "start" if low else "end")
        return boundary(c, part, low, scope)
    d = c.d
    kind = focus.kind
    if kind in ("integer", "decimal"):
        def moved(text: str) -> str:
            half = f"(0.5 / {d.power10(d.decimal_places(text))})"
            return f"(cast({text} as double) {'-' if low else '+'} {half})"

        return typed(d.bind(c.as_typed(focus, "string", scope), moved), "decimal", "decimal")
    if kind not in ("date", "datetime", "time"):
        raise c.error(scope, f"{'low' if low else 'high'}Boundary() needs a decimal, date, "
                             f"dateTime, instant, time or Period, got {focus.fhir_type or kind}")
    value = c.as_typed(focus, "string", scope)
    if kind == "date":
        return typed(d.bind(value, lambda text: _date(d, text, low)), "date", "date")
    if kind == "time":
        return typed(d.bind(value, lambda text: f"(case when {text} is null then null else "
                                                f"{_time(text, low)} end)"), "time", "time")
    default_zone = "'+14:00'" if low else "'-12:00'"

    def filled(text: str) -> str:
        date_part = d.regex_group(text, _DATE, 1)
        time_part = d.regex_group(text, _TIME_IN_DATETIME, 1)
        zone = d.regex_group(text, _ZONE, 1)
        return (f"(case when {text} is null then null else {_date(d, date_part, low)} || 'T' || "
                f"{_time(time_part, low)} || coalesce({zone}, {default_zone}) end)")

    return typed(d.bind(value, filled), "datetime", "dateTime")


def _date(d: Dialect, text: str, low: bool) -> str:
    if low:
        return (f"(case length({text}) when 4 then {text} || '-01-01' "
                f"when 7 then {text} || '-01' else {text} end)")
    return (f"(case length({text}) when 4 then {text} || '-12-31' "
            f"when 7 then {d.last_day_of_month(text)} else {text} end)")


def _time(text: str, low: bool) -> str:
    fill, minute, ms = ("0", "00", "000") if low else ("9", "59", "999")
    return (f"(case when {text} is null then '{'00:00:00.000' if low else '23:59:59.999'}' "
            f"when length({text}) = 2 then {text} || ':{minute}:{minute}.{ms}' "
            f"when length({text}) = 5 then {text} || ':{minute}.{ms}' "
            f"when length({text}) = 8 then {text} || '.{ms}' "
            f"else rpad(left({text}, 12), 12, '{fill}') end)")
