"""Code lists and clinical rules, read from the package's data/*.json files.

FHIR codings built here are shared between resources (never mutated after creation): a
bundle holds thousands of identical CodeableConcepts, and reusing one dict per code keeps
the simulator fast without changing the JSON it writes.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

Json = dict[str, Any]


@cache
def load_data(name: str) -> Json:
    """One data file (`data/<name>.json`), parsed once per process."""
    data = resources.files("fhirflow.generate").joinpath("data")
    text = data.joinpath(f"{name}.json").read_text("utf-8")
    return json.loads(text)


_US_NAMESPACES = ("1000124", "1000175")


def _us_namespace(sctid: str) -> bool:
    """An SCTID is namespace(7) + partition(2) + check digit; partition 10 = extension concept."""
    return len(sctid) > 10 and sctid[-3:-1] == "10" and sctid[-10:-3] in _US_NAMESPACES


class Catalog:
    """Turns `[system key, code, display]` triples into FHIR codings, once per code."""

    def __init__(self) -> None:
        self.clinical = load_data("clinical")
        self.systems: dict[str, str] = self.clinical["systems"]
        self._us_edition: str = self.clinical["snomed_us_edition"]
        self._codings: dict[tuple[str, str, str], Json] = {}
        self._concepts: dict[tuple[str, str, str], Json] = {}
        self._concepts_no_text: dict[tuple[str, str, str], Json] = {}

    def coding(self, triple: list[str] | tuple[str, str, str]) -> Json:
        key = (triple[0], triple[1], triple[2])
        found = self._codings.get(key)
        if found is None:
            system = self.systems.get(triple[0], triple[0])
            found = {"system": system, "code": triple[1], "display": triple[2]}
            # Concepts from the US-edition namespaces carry the edition, as Synthea writes them.
            if triple[0] == "sct" and _us_namespace(triple[1]):
                found = {"system": system, "version": self._us_edition, "code": triple[1],
                         "display": triple[2]}
            self._codings[key] = found
        return found

    def concept(self, triple: list[str] | tuple[str, str, str]) -> Json:
        """CodeableConcept with one coding and text = display."""
        key = (triple[0], triple[1], triple[2])
        found = self._concepts.get(key)
        if found is None:
            found = {"coding": [self.coding(triple)], "text": triple[2]}
            self._concepts[key] = found
        return found

    def concept_no_text(self, triple: list[str] | tuple[str, str, str]) -> Json:
        key = (triple[0], triple[1], triple[2])
        found = self._concepts_no_text.get(key)
        if found is None:
            found = {"coding": [self.coding(triple)]}
            self._concepts_no_text[key] = found
        return found
