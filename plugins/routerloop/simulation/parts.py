"""What the parts of the world model share: the knobs, the one random stream, ids, and the outbox."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from routerloop.simulation.parameters import SimulationParameters
from routerloop.simulation.sampling import IdMinter


class Outbox(Protocol):
    """Takes a record of a stream (an index into streams.STREAM_NAMES) with the time it happens at."""

    def emit(self, stream: int, at_ms: int, record: dict) -> None: ...


@dataclass(frozen=True)
class Shared:
    params: SimulationParameters
    rng: random.Random  # the world's one random stream: parts draw from it in a fixed order
    ids: IdMinter
    outbox: Outbox


class WorldPart:
    """A part of the world model, with the shared pieces at hand as attributes."""

    def __init__(self, shared: Shared):
        self.p = shared.params
        self.rng = shared.rng
        self.ids = shared.ids
        self.outbox = shared.outbox
