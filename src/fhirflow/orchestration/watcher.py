"""Cosmos's watcher producer, pushing only the XComs its watcher tasks read.

In ExecutionMode.WATCHER the producer hands every dbt event to Cosmos's parser, which pushes
an XCom for each event that names a node: the node's `_dbt_event` on NodeStart,
NodeCompiling, NodeExecuting and NodeFinished (each overwriting the one before), its
`_status` when it finished, a model's compiled SQL, and a model's aggregated test result.
Cosmos serializes the pushes under one lock, so dbt's threads queue behind them; with the
project's 420 nodes that is about 1,850 XCom writes per transform run (603 keys), each a call
to the Airflow API, and the three producers took 54.5 s where the same dbt work took 15.5 s
in one task per layer (benchmarks/RESULTS.md).

What the watcher tasks read is a model's `_status`, its last `_dbt_event` (logged when the
model finished), its compiled SQL, and its tests' aggregate. So this producer drops the
three in-progress events before Cosmos parses them (each was overwritten by the next; dbt
logs them at debug level) and keeps a test's NodeFinished out of the `_dbt_event` push
(nothing reads a test's; its result still counts towards the model's aggregate). Every
other event, errors and skips included, goes to Cosmos's parser unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cosmos.operators.watcher import DbtProducerWatcherOperator

# dbt's per-node progress events that precede NodeFinished
_IN_PROGRESS = frozenset({"NodeStart", "NodeCompiling", "NodeExecuting"})
# Not one of the names Cosmos pushes a `_dbt_event` XCom for (its allow-list).
_TEST_FINISHED = "NodeFinished.test"

Parse = Callable[[str, Any], None]


def fewer_xcoms(parse: Parse) -> Parse:
    """Cosmos's dbt-event parser behind a filter of the events no watcher task reads."""

    def filtered(line: str, extra: Any) -> None:
        try:
            event = json.loads(line)
        except ValueError:  # not an event: Cosmos forwards other output to the task log
            parse(line, extra)
            return
        info = event.get("info") if isinstance(event, dict) else None
        if not isinstance(info, dict):
            parse(line, extra)
            return
        name = info.get("name")
        if name in _IN_PROGRESS:
            return
        node = (event.get("data") or {}).get("node_info") or {}
        if name == "NodeFinished" and node.get("resource_type") == "test":
            info["name"] = _TEST_FINISHED
            line = json.dumps(event)
        parse(line, extra)

    return filtered


class FewerXComsProducerOperator(DbtProducerWatcherOperator):
    """The producer of a fhirflow layer group: Cosmos's, with `fewer_xcoms`."""

    def _make_parse_callable(self) -> Parse:
        return fewer_xcoms(super()._make_parse_callable())


def push_fewer_xcoms(producer: Any) -> bool:
    """Make the producer Cosmos created for a task group this module's. Cosmos offers no
    setting for its producer's class, so the instance changes class (a subclass adding one
    method); a Cosmos whose producer is another class is left alone (False)."""
    if type(producer) is not DbtProducerWatcherOperator:
        return False
    producer.__class__ = FewerXComsProducerOperator
    return True
