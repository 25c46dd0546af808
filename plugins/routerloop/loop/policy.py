"""The weighted router: a ticket goes to a team with probability proportional to the team's routing
weight for the ticket's tier (as triaged), read from the weights file the router reads (latest.json).

Before the first export, and for a team or tier the file does not name, the weight is `weights_base`
(dbt var): the router starts from the static split. The file is read once a day, at the day's start.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from pathlib import Path

from routerloop import contract
from routerloop.config import dbt_var


class WeightedRouting:
    """Routes with the weights of one strategy from a latest.json; `refresh` re-reads the file."""

    def __init__(self, strategy: str, weights_file: Path):
        self.strategy = strategy
        self.weights_file = Path(weights_file)
        self.base = float(dbt_var("weights_base"))
        self.weights: dict[tuple[str, str], float] = {}
        self.version: str | None = None
        self._tables: dict[tuple[tuple[str, ...], int], tuple[tuple[str, ...], list[float]]] = {}

    def refresh(self) -> None:
        """Read the weights exported last (none yet: every weight is base)."""
        self._tables.clear()
        if not self.weights_file.exists():
            self.weights, self.version = {}, None
            return
        document = json.loads(self.weights_file.read_text())
        self.version = document["manifest"]["weights_version"]
        self.weights = {(r["team_id"], r["tier"]): float(r["weight"]) for r in document["weights"]
                        if r["strategy"] == self.strategy and r["weight"] is not None}

    def weight(self, team: str, tier: str) -> float:
        return self.weights.get((team, tier), self.base)

    def pick(self, teams: Sequence[str], tier: int, u: float) -> tuple[str, float]:
        """(team, its probability) for a ticket of tier index `tier`, given a uniform draw `u` in [0, 1)."""
        items, cumulative = self._table(tuple(teams), tier)
        index = min(bisect.bisect_right(cumulative, u), len(items) - 1)
        low = cumulative[index - 1] if index else 0.0
        return items[index], round(cumulative[index] - low, 6)

    def _table(self, teams: tuple[str, ...], tier: int) -> tuple[tuple[str, ...], list[float]]:
        key = (teams, tier)
        if key not in self._tables:
            weights = [self.weight(team, contract.TIERS[tier]) for team in teams]
            total = sum(weights)
            if total <= 0:
                raise ValueError(f"the weights of tier {contract.TIERS[tier]} sum to {total}")
            running, cumulative = 0.0, []
            for w in weights:
                running += w / total
                cumulative.append(running)
            cumulative[-1] = 1.0
            self._tables[key] = (teams, cumulative)
        return self._tables[key]
