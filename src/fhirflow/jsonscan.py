"""Inspecting untrusted JSON in Python without recursion or unbounded work.

`json.loads` recurses once per nesting level, so a file nested 100,000 deep raises
RecursionError (and in a thread with a small stack it can overflow the C stack). Before anything
is parsed, `nesting_problem` measures the depth with regular expressions and byte
translation, which run in C and never recurse: strings are blanked, every byte but brackets
dropped, and innermost `[]`/`{}` pairs removed pass after pass (at most `max_depth` passes).
Only text that passes is handed to `json.loads`. Facts that do not need a parse
(conditional references) are read with regular expressions over the bytes.
"""

from __future__ import annotations

import json
import re
from typing import Any

# FHIR resources nest about 10 levels deep (a Bundle entry's ExplanationOfBenefit item
# adjudication coding); nothing valid comes near this.
MAX_DEPTH = 200

# A string runs to its closing quote or to the end of the text: the pattern matches from
# every quote, so the scan is linear even for unterminated strings and runs of `\"`.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# A bundle with at least one entry object: `"entry": [ {`. Used as a fast path; a file it
# does not match is parsed (safely) to tell.
_ENTRY_OBJECT = re.compile(rb'"entry"\s*:\s*\[\s*\{')
_CONDITIONAL_REFERENCE = re.compile(
    rb'"reference"\s*:\s*"((?:Organization|Practitioner|PractitionerRole|Location)'
    rb'\?identifier=[^"\\]*)"'
)


class UnsafeJson(ValueError):
    """The text is not JSON we are willing to parse in Python; `str()` is the reason."""


def nesting_problem(data: bytes, max_depth: int = MAX_DEPTH) -> str | None:
    """Why `data` must not go to json.loads (too deep, unbalanced), or None."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    for _ in range(max_depth):
        if not brackets:
            return None
        # One or two levels per pass (bytes.replace is a C loop; a regex here is 10x slower).
        reduced = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if len(reduced) == len(brackets):
            return "invalid JSON (unbalanced brackets)"
        brackets = reduced
    if not brackets:
        return None
    return f"JSON nested deeper than {max_depth} levels"


def safe_loads(data: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads for untrusted bytes: UTF-8 only, depth checked first; UnsafeJson if not."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeJson("not UTF-8") from None
    problem = nesting_problem(data, max_depth)
    if problem:
        raise UnsafeJson(problem)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UnsafeJson(f"invalid JSON ({str(exc).splitlines()[0][:120]})") from None


def has_entry_objects(data: bytes) -> bool:
    return _ENTRY_OBJECT.search(data) is not None


def conditional_references(data: bytes) -> set[str]:
    """`Organization?identifier=system|value` and the like, as written in the bundle."""
    return {m.decode("utf-8", "replace") for m in _CONDITIONAL_REFERENCE.findall(data)}


def entries(doc: Any) -> list[Any] | None:
    """A parsed Bundle's `entry` list, or None when `doc` is not an object with a list."""
    if not isinstance(doc, dict):
        return None
    value = doc.get("entry", [])
    return value if isinstance(value, list) else None


def resources(doc: Any) -> list[dict[str, Any]]:
    """The entry resources of a parsed Bundle that are JSON objects."""
    found = []
    for entry in entries(doc) or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            found.append(resource)
    return found


def conditional_targets(doc: Any) -> set[str]:
    """The conditional references a run-level bundle's resources answer:
    `<type>?identifier=<system>|<value>` for each identifier of each resource."""
    targets = set()
    for resource in resources(doc):
        kind = resource.get("resourceType")
        identifiers = resource.get("identifier")
        if not isinstance(kind, str) or not isinstance(identifiers, list):
            continue
        for ident in identifiers:
            if isinstance(ident, dict) and isinstance(ident.get("value"), str):
                system = ident.get("system") if isinstance(ident.get("system"), str) else ""
                targets.add(f"{kind}?identifier={system}|{ident['value']}")
                targets.add(f"{kind}?identifier={ident['value']}")
    return targets
