"""The closed loop, simulated: `routerloop simulate` (issue 13, section 1).

The generator's world (routerloop.simulation) is stepped one UTC day at a time. Each day's tickets are
routed with the weights the pipeline exported the day before (latest.json of the strategy's export
folder); the day's telemetry then goes through the real pipeline (land -> dbt build of the day ->
gates -> export), whose export the next day reads. Every strategy runs in a warehouse of its own on the
same seed and the same tickets (common random numbers), so the comparison with `static` is paired.

Modules:
- `worlds`: the simulated worlds (default, no_signal, shift, thin): parameters and skill shifts;
- `policy`: the weighted router: a team with probability proportional to its weight for the tier;
- `world`: `LoopWorld`, the generator's world with that router, per-decision random streams and a
  log of every ticket's truth (resolution, breach, rating) for the read-out;
- `pipeline`: a strategy's lane (database, landing zone, export folder) and its daily pipeline run;
- `metrics`: per-day and overall figures, and the paired differences against `static`;
- `page`: the HTML page with the plots;
- `run`: `simulate`, which ties them together.
"""

from routerloop.loop.run import simulate
from routerloop.loop.worlds import WORLDS

__all__ = ["WORLDS", "simulate"]
