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
    """Unique, random-looking ids of a seed, also across runs over other hours.

    An id is a keyed 64-bit bijection of (hour it is minted in, hours since the run's first id, a
    per-prefix counter that restarts every hour): two runs with the same seed mint the same id only
    when they start in the same hour and mint it in the same hour, i.e. when they replay the same
    generation. Ids are minted in time order (`enter_hour` never goes back).
    """

    _MASK = (1 << 64) - 1
    _MULTIPLIER = 0x9E3779B97F4A7C15  # odd, so multiplication mod 2**64 is a bijection
    _COUNTER_BITS = 28  # ids per prefix and hour
    _OFFSET_BITS = 16  # hours since the run's first id
    _HOUR_BITS = 20  # hours since 1970: enough until 2089

    def __init__(self, seed: int):
        self.seed = seed
        self.counters: dict[str, int] = {}
        self.keys: dict[str, int] = {}
        self.first_hour: int | None = None
        self.hour: int | None = None
        self.base = 0  # the hour and offset bits of the current hour's ids

    def enter_hour(self, hour: int) -> None:
        """Mint the coming ids in `hour` (hours since 1970, UTC)."""
        if hour == self.hour:
            return
        if self.hour is not None and hour < self.hour:
            raise ValueError(f"ids are minted in time order: hour {hour} follows hour {self.hour}")
        if self.first_hour is None:
            self.first_hour = hour
        offset = hour - self.first_hour
        if not (0 <= hour < 1 << self._HOUR_BITS and offset < 1 << self._OFFSET_BITS):
            raise ValueError(f"hour {hour} (offset {offset} from the first) is outside the range ids encode")
        self.hour = hour
        self.base = ((hour << self._OFFSET_BITS) | offset) << self._COUNTER_BITS
        self.counters.clear()

    def next(self, prefix: str) -> str:
        if self.hour is None:
            raise ValueError("enter_hour before minting ids")
        n = self.counters.get(prefix, 0)
        if n >> self._COUNTER_BITS:
            raise ValueError(f"more than {1 << self._COUNTER_BITS} {prefix!r} ids in one hour")
        self.counters[prefix] = n + 1
        key = self.keys.get(prefix)
        if key is None:
            digest = hashlib.sha256(f"{self.seed}:{prefix}".encode()).digest()
            key = self.keys[prefix] = int.from_bytes(digest[:8], "big")
        x = (self.base | n) ^ key
        for _ in range(2):  # two multiply-xorshift rounds: neighbouring counters look unrelated
            x = (x * self._MULTIPLIER) & self._MASK
            x ^= x >> 32
        return f"{prefix}{x:016x}"
