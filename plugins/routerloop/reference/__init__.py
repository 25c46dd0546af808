"""The organisation's roster and experiments, from the reference folder (setting `reference_dir`).

`routerloop reference validate|load|show`: files.py reads and validates the folder (file, line and rule
of each problem); store.py loads it into schema `reference` in one transaction, keeping the history of
which agent was in which team when. reference/README.md documents the files.
"""

from routerloop.reference.files import FILES, Problem, Roster, RosterError, read_roster
from routerloop.reference.store import ReferenceNotLoaded, load, merge_timeline, require_loaded, show

__all__ = [
    "FILES", "Problem", "ReferenceNotLoaded", "Roster", "RosterError", "load", "merge_timeline", "read_roster",
    "require_loaded", "show",
]
