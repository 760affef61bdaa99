"""Planned events and the queue they wait in.

Planning puts most events on the queue up front; a handler may add more while it records
(a dental visit after a wellness referral, a discharge to a nursing facility after a stay).
Events leave the queue in time order; on the same instant `ORDER` decides, then the order
they were added in, so a run is reproducible.
"""

from __future__ import annotations

import heapq
from typing import Any, NamedTuple

# Weight of each kind of event in a day (a wellness visit before a diagnosis on the same day).
ORDER = {
    "wellness": 0, "wellness_history": 0, "diagnose": 1, "followup": 2, "checkup": 2, "prenatal": 2,
    "contraceptive": 2,
    "substance_visit": 2, "covid_vaccine": 2, "acute": 3, "injury": 3, "exacerbation": 4,
    "dental": 5,
    "dental_followup": 5, "admission": 6, "snf": 6, "overdose": 6, "detox": 6, "home_health": 7,
    "hospice": 8,
    "death": 9,
}


class Event(NamedTuple):
    at: int
    order: int
    sequence: int
    kind: str  # a key of handlers.HANDLERS
    payload: Any


class EventQueue:
    def __init__(self) -> None:
        self._heap: list[Event] = []
        self._added = 0

    def add(self, at: int, kind: str, payload: Any = None) -> None:
        heapq.heappush(self._heap, Event(at, ORDER[kind], self._added, kind, payload))
        self._added += 1

    def pop(self) -> Event:
        return heapq.heappop(self._heap)

    def __len__(self) -> int:
        return len(self._heap)
