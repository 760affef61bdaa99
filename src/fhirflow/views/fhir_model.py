"""The FHIR R4 structure the compiler needs: for each type, its elements' types and
cardinalities and its choice elements (`value[x]`).

The facts come from the FHIR specification through `fhir.resources` (R4B, the same as R4 for
what views read). `build()` walks those models once and writes `data/fhir_r4b.json`; the
compiler reads only that file, so neither fhir.resources nor pydantic is needed at run time.
A test rebuilds it and compares, so the file cannot drift from its source.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_FILE = Path(__file__).with_name("data") / "fhir_r4b.json"

# fhir.resources marks primitive types with a constraint class; its name is the FHIR type.
_PRIMITIVE_MARKERS = {
    "EncodedBytes": "base64Binary",
    "UuidVersion": "uuid",
}
PRIMITIVES = frozenset({
    "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id",
    "instant", "integer", "integer64", "markdown", "oid", "positiveInt", "string", "time",
    "unsignedInt", "uri", "url", "uuid", "xhtml",
})


@dataclass(frozen=True)
class Element:
    """One element of a FHIR type: its JSON name, FHIR type and whether it repeats.

    A choice element (`value[x]`) has no type of its own; `choices` maps each allowed type
    to the JSON name that carries it (`Quantity` -> `valueQuantity`).
    """

    name: str
    type: str | None
    array: bool
    choices: tuple[tuple[str, str], ...] = ()

    def choice_key(self, fhir_type: str) -> str | None:
        for type_name, key in self.choices:
            if type_name == fhir_type:
                return key
        return None


@dataclass(frozen=True)
class FhirModel:
    types: dict[str, dict[str, list]]
    resources: frozenset[str]

    def element(self, type_name: str | None, name: str) -> Element | None:
        if type_name is None:
            return None
        spec = self.types.get(type_name, {}).get(name)
        if spec is None:
            return None
        if isinstance(spec[0], dict):
            return Element(name, None, False, tuple(sorted(spec[0].items())))
        return Element(name, spec[0], bool(spec[1]))

    def is_resource(self, name: str) -> bool:
        return name in self.resources

    def knows(self, type_name: str | None) -> bool:
        return type_name is not None and type_name in self.types


@lru_cache(maxsize=1)
def load_model() -> FhirModel:
    doc = json.loads(DATA_FILE.read_text())
    return FhirModel(types=doc["types"], resources=frozenset(doc["resources"]))


# ---------------------------------------------------------------- building the data file


def _unwrap_optional(annotation: object) -> object:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _type_of(annotation: object) -> tuple[str | None, bool]:
    """(FHIR type, repeats) of one pydantic field annotation of fhir.resources."""
    inner = _unwrap_optional(annotation)
    array = typing.get_origin(inner) in (list, typing.List)  # noqa: UP006 - both spellings occur
    if array:
        inner = _unwrap_optional(typing.get_args(inner)[0])
    if typing.get_origin(inner) is typing.Annotated:
        marker = type(inner.__metadata__[0]).__name__
        name = _PRIMITIVE_MARKERS.get(marker, marker[:1].lower() + marker[1:])
        return (name if name in PRIMITIVES else None), array
    if inner is bool:
        return "boolean", array
    if isinstance(inner, type) and inner.__name__.endswith("Type"):
        return inner.__name__[: -len("Type")], array
    return None, array


def build() -> dict:
    """The data file's content, from fhir.resources (a dev dependency)."""
    import importlib
    import inspect
    import pkgutil

    import fhir.resources.R4B as r4b

    classes: dict[str, type] = {}
    for info in pkgutil.iter_modules(r4b.__path__):
        if info.name.startswith("fhir"):
            continue
        module = importlib.import_module(f"{r4b.__name__}.{info.name}")
        for name, cls in vars(module).items():
            if inspect.isclass(cls) and cls.__module__ == module.__name__ and hasattr(
                    cls, "model_fields"):
                classes[name] = cls
    out: dict[str, dict[str, list]] = {}
    resources = []
    for name, cls in sorted(classes.items()):
        elements: dict[str, list] = {}
        choices: dict[str, dict[str, str]] = {}
        for field_name, field in cls.model_fields.items():
            extra = field.json_schema_extra or {}
            if not isinstance(extra, dict) or not extra.get("element_property"):
                continue
            key = field.alias or field_name
            fhir_type, array = _type_of(field.annotation)
            group = extra.get("one_of_many")
            if group:
                choices.setdefault(group, {})[fhir_type or key[len(group):]] = key
            else:
                elements[key] = [fhir_type, int(array)]
        for group, members in choices.items():
            elements[group] = [dict(sorted(members.items()))]
        out[name] = dict(sorted(elements.items()))
        resource_type = getattr(cls, "get_resource_type", None)
        if "Resource" in [c.__name__ for c in cls.__mro__[1:]] and callable(resource_type):
            if resource_type() == name:
                resources.append(name)
    return {"source": "fhir.resources R4B", "resources": sorted(resources), "types": out}


def write(path: Path = DATA_FILE) -> None:
    doc = build()
    # One type per line: small diffs when the source changes.
    lines = [f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}"
             for k, v in doc["types"].items()]
    text = ("{\n" + f'"source": {json.dumps(doc["source"])},\n'
            + f'"resources": {json.dumps(doc["resources"])},\n'
            + '"types": {\n' + ",\n".join(lines) + "\n}}\n")
    path.write_text(text)


if __name__ == "__main__":
    write()
