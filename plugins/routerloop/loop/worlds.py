"""The simulated worlds: what differs between them is the teams' skill, when it changes, and the volume.

- `default`: the generator's world (routerloop.simulation.parameters): teams differ in skill per tier;
- `no_signal`: every team alike (the same skill and load): the loop must not invent differences;
- `shift`: the default world, but team_security's skill drops to `SHIFT_SKILL` from day `SHIFT_DAY`
  (1-based): the weights must follow, never faster than the step cap;
- `thin`: the default world at `THIN_DECISIONS_PER_HOUR`: few tickets per team x tier.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from routerloop.simulation.parameters import PARAMETERS, SimulationParameters

SHIFT_DAY = 7
SHIFT_TEAM = "team_security"
SHIFT_SKILL = (0.15, 0.15, 0.2, 0.2)
THIN_DECISIONS_PER_HOUR = 12


@dataclass(frozen=True)
class World:
    """A world: its parameters, skill changes {day (1-based): {team: skill per tier}} and volume, if fixed."""

    name: str
    parameters: SimulationParameters
    skill_shifts: dict = field(default_factory=dict)
    decisions_per_hour: int | None = None  # None: the caller's (settings().simulate_decisions_per_hour)

    def skill_changes_on(self, day: int) -> dict:
        return self.skill_shifts.get(day, {})


_ALIKE = replace(PARAMETERS, team_skill={}, default_team_skill=(0.6, 0.6, 0.6, 0.6), team_load={},
                 default_team_load=1.0)

WORLDS: dict[str, World] = {
    "default": World("default", PARAMETERS),
    "no_signal": World("no_signal", _ALIKE),
    "shift": World("shift", PARAMETERS, {SHIFT_DAY: {SHIFT_TEAM: SHIFT_SKILL}}),
    "thin": World("thin", PARAMETERS, decisions_per_hour=THIN_DECISIONS_PER_HOUR),
}
