"""Seeds derived from names, so a request gets the same samples whatever else is in its batch."""

from __future__ import annotations

import hashlib
import json


def derived_seed(base_seed: int, key: str) -> int:
    """A 31-bit seed from a base seed and a stable key (a prompt id, a request's identity)."""
    return int.from_bytes(hashlib.sha256(f"{base_seed}:{key}".encode()).digest()[:4], "big") >> 1


def rollout_seed(base_seed: int, messages: tuple[dict[str, str], ...] | list[dict[str, str]]) -> int:
    """The seed of a rollout from a prefix: a function of what is continued (the messages, the partial
    answer last), never of who asks, so MC, OmegaPRM and reruns draw the same samples from one prefix
    and share them through the rollout cache."""
    return derived_seed(base_seed, json.dumps([[m["role"], m["content"]] for m in messages], ensure_ascii=False))
