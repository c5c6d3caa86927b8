"""The safety tables each site's tally counts (trial/tallies.py): adverse events by status (proposed by lab
grading, reported, dismissed)."""

from trial.tallies import Source, register

ADVERSE_EVENTS = Source("ae", "safety_adverseevent", detail="{row}.status", watched=("status",))
SOURCES = (ADVERSE_EVENTS,)

register(*SOURCES)
