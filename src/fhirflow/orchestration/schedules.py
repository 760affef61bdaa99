"""Schedules: the strings DAG settings take, which load run a transform run waits for, and
the generator seed of each generation run."""

from __future__ import annotations

import logging
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from fhirflow.config import load_dag_settings
from fhirflow.orchestration import LOAD_DAG_ID

log = logging.getLogger(__name__)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# How far the sensor looks for load runs around its own logical date, in load ticks.
_TICKS_AFTER, _TICKS_BEFORE = 12, 6
# A load tick this recent may simply not have its run created yet: wait for it.
_CREATION_GRACE = timedelta(minutes=2)


def parse_schedule(value: str) -> str | timedelta | None:
    """`10s` -> timedelta(seconds=10); `none` -> None; cron and presets pass through."""
    text = value.strip()
    if text.lower() in {"", "none", "manual"}:
        return None
    if text[:-1].isdigit() and text[-1:].lower() in _UNITS:
        return timedelta(seconds=int(text[:-1]) * _UNITS[text[-1].lower()])
    if text.isdigit():
        return timedelta(seconds=int(text))
    return text


def latest_tick(schedule: str | timedelta | None, moment: datetime) -> datetime:
    """The newest tick of a cron schedule at or before `moment` (`moment` for other kinds)."""
    if not isinstance(schedule, str) or schedule.startswith("@once"):
        return moment
    from croniter import croniter

    if not croniter.is_valid(schedule):
        return moment
    # croniter's get_prev is strictly before its start, so start just after the moment.
    itr = croniter(schedule, moment + timedelta(microseconds=1))
    tick = itr.get_prev(datetime)
    return tick if tick.tzinfo else tick.replace(tzinfo=UTC)


def latest_load_logical_date(logical_date: datetime, **context: Any) -> datetime:
    """`execution_date_fn` of `wait_for_s3_load`: the load run this transform run waits for.

    A run triggered by the load DAG's Asset waits for the load run that emitted the event
    (its logical date travels in the event's extra). A time-scheduled run waits for the
    latest load run, found through the load DAG's cron schedule although the two DAGs run
    on different ones: the newest load tick at or before this run's logical date (10:10
    waits for the 10:10 load, 10:07 for the 10:05 one) when that run exists or is about to
    be created; else the newest load run that exists around it (after a restart, or a
    load DAG unpaused later, the ticks before may have no run and never will).
    Called at every poke, so a run created meanwhile is found on the next one.
    """
    events = context.get("triggering_asset_events") or {}
    stamps: list[str] = []
    try:
        for _asset, asset_events in events.items():
            for event in asset_events:
                extra = getattr(event, "extra", None) or {}
                if extra.get("load_logical_date"):
                    stamps.append(str(extra["load_logical_date"]))
    except (AttributeError, TypeError):
        stamps = []
    if stamps:
        return datetime.fromisoformat(max(stamps))
    schedule = parse_schedule(load_dag_settings().load_schedule)
    tick = latest_tick(schedule, logical_date)
    ti = context.get("ti")
    if ti is None or not isinstance(schedule, str):
        return tick
    return existing_load_tick(ti, schedule, tick, datetime.now(UTC))


def existing_load_tick(ti: Any, schedule: str, tick: datetime, now: datetime) -> datetime:
    """`tick` when its load run exists (or may still be created), else the nearest load
    tick around it that has a run."""
    from croniter import croniter

    def exists(moment: datetime) -> bool:
        return ti.get_dr_count(dag_id=LOAD_DAG_ID, logical_dates=[moment]) > 0

    if exists(tick) or now - tick < _CREATION_GRACE:
        return tick
    later = croniter(schedule, tick)
    after = []
    for _ in range(_TICKS_AFTER):
        moment = later.get_next(datetime)
        if moment > now:
            break
        after.append(moment)
    earlier = croniter(schedule, tick)
    before = [earlier.get_prev(datetime) for _ in range(_TICKS_BEFORE)]
    for moment in [*reversed(after), *before]:
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if exists(moment):
            log.info("no %s run at %s; waiting for the one at %s instead",
                     LOAD_DAG_ID, tick.isoformat(), moment.isoformat())
            return moment
    return tick


def seed_for_run(base_seed: int, dag_id: str, run_key: str) -> int:
    """A generator seed per DAG run: new patients every run, the same ones on a retry."""
    return (base_seed * 1_000_003 + zlib.crc32(f"{dag_id}/{run_key}".encode())) % (2**31 - 1)


def run_key(logical_date: datetime | None, run_id: str) -> str:
    """What tells one run from another: its logical date, which a re-run of the same
    interval shares (a manual run id carries the trigger time); the run id when a run has
    no logical date."""
    return logical_date.isoformat() if logical_date is not None else run_id
