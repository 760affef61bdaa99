"""Deterministic, uuid-shaped ids.

Synthea's ids are 128 random bits printed as a uuid (not RFC-4122 version bits), e.g.
9808a1c3-5354-de5f-bfe5-7fdbd39bb426; ours are made the same way from seeded generators,
so the same seed gives the same ids.
"""

from __future__ import annotations

import hashlib
import random


def format_uuid(bits: int) -> str:
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def random_uuid(rng: random.Random) -> str:
    return format_uuid(rng.getrandbits(128))


def name_uuid(*parts: object) -> str:
    """A stable id from a name: the same parts give the same id in every run and process."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return format_uuid(int.from_bytes(digest[:16], "big"))


def seeded(*parts: object) -> random.Random:
    """A generator seeded from parts; str seeding hashes with SHA-512, so it is stable."""
    return random.Random("|".join(str(p) for p in parts))
