"""Seeds derived from names, so a request gets the same samples whatever else is in its batch."""

from __future__ import annotations

import hashlib


def derived_seed(base_seed: int, key: str) -> int:
    """A 31-bit seed from a base seed and a stable key (a prompt id, a request's identity)."""
    return int.from_bytes(hashlib.sha256(f"{base_seed}:{key}".encode()).digest()[:4], "big") >> 1
