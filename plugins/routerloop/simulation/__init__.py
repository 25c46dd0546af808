"""Simulated router telemetry in the contract's landing layout: a small simulation, not noise.

Teams have a latent skill per tier and a load; agents belong to teams; every tier has an SLA policy
(the reference folder, setting reference_dir, is the roster). Each hour the router makes `decisions_per_hour`
decisions. A decision has a true tier the router may miss (mostly by one tier, more often when its
reason tags say the message was ambiguous), a confidence that is higher when it is right, a rule
version, and an A/B variant (routerloop.experiments: a sha256 of experiment and ticket id bucketed
by traffic share). Its ticket gets a resolution time from the team's skill and load and the SLA
target, hence an SLA outcome (an interim `warn` evaluation for some, a final one at resolution), a
decision outcome whose success follows correct routing, and sometimes a CSAT rating that falls with
resolution time and breach. A share of decisions gets feedback (explicit, reaction, implicit; linked
by id, by linked id, by thread only, or to nothing); mismatches open review items resolved later.

Same seed, same bytes: one seeded random stream for the simulation, another for bad lines, no wall
clock, no set or hash() ordering.

Modules, in the order a run uses them:

- `parameters`: the knobs of a run (`SimulationParameters`, defaults in `PARAMETERS`);
- `reference`: teams, agents, SLA policies and experiments from dbt_project/seeds;
- `world`: the world model stepped hour by hour (`World`, `Decision`), with `router` (the routing
  policy, a pluggable `RoutingPolicy`; triage; experiments), `feedback` (feedback and review items)
  and `tickets` (resolution, SLA, CSAT, decision outcomes);
- `faults`: bad lines, re-deliveries and empty files, counted for the manifest;
- `writer`: the outbox of pending events and the hourly JSONL partitions;
- `run`: `generate`, which ties them together and writes `_generator_manifest.json`.
"""

from routerloop.simulation.faults import DUPLICATE, applicable_faults
from routerloop.simulation.parameters import PARAMETERS, SimulationParameters
from routerloop.simulation.reference import Reference, load_reference
from routerloop.simulation.router import RoutingPolicy, TopicRouting
from routerloop.simulation.run import generate
from routerloop.simulation.world import Decision, World
from routerloop.simulation.writer import MANIFEST_NAME

__all__ = [
    "DUPLICATE",
    "MANIFEST_NAME",
    "PARAMETERS",
    "Decision",
    "Reference",
    "RoutingPolicy",
    "SimulationParameters",
    "TopicRouting",
    "World",
    "applicable_faults",
    "generate",
    "load_reference",
]
