"""Deterministic sampling helpers: weighted choice and random-looking unique ids."""

from __future__ import annotations

import bisect
import hashlib
import random


class WeightedChoice:
    """Weighted choice by bisecting cumulative weights (items in the given, deterministic order)."""

    def __init__(self, weights: dict):
        self.items = tuple(weights)
        total = 0.0
        self.cumulative = []
        for item in self.items:
            total += float(weights[item])
            self.cumulative.append(total)
        if total <= 0:
            raise ValueError(f"weights must sum to more than 0: {weights}")
        self.total = total

    def pick(self, rng: random.Random):
        return self.items[bisect.bisect_right(self.cumulative, rng.random() * self.total)]


class IdMinter:
    """Unique, random-looking ids: a 48-bit bijection of a per-prefix counter, keyed by the seed."""

    _MASK = (1 << 48) - 1
    _MULTIPLIER = 0x5DEECE66D  # odd, so multiplication mod 2**48 is a bijection

    def __init__(self, seed: int):
        self.seed = seed
        self.counters: dict[str, int] = {}
        self.keys: dict[str, int] = {}

    def next(self, prefix: str) -> str:
        n = self.counters.get(prefix, 0)
        self.counters[prefix] = n + 1
        key = self.keys.get(prefix)
        if key is None:
            digest = hashlib.sha256(f"{self.seed}:{prefix}".encode()).digest()
            key = self.keys[prefix] = int.from_bytes(digest[:6], "big")
        x = n ^ key
        for _ in range(2):  # two multiply-xorshift rounds: neighbouring counters look unrelated
            x = (x * self._MULTIPLIER) & self._MASK
            x ^= x >> 24
        return f"{prefix}{x:012x}"
