"""The safety tables each site's tally counts (trial/tallies.py): adverse events by status (proposed by lab
grading, reported, dismissed), open or ended, expedited or not: `ae:reported:open:expedited`. The safety dashboard
reads which of its parts a site has none of, so it does not walk an index to its end to find so."""

from trial.tallies import Source, register

ADVERSE_EVENTS = Source(
    "ae",
    "safety_adverseevent",
    detail=(
        "{row}.status || ':' || CASE WHEN {row}.end_date IS NULL THEN 'open' ELSE 'ended' END || ':' "
        "|| CASE WHEN {row}.expedited_at IS NULL THEN 'routine' ELSE 'expedited' END"
    ),
    watched=("status", "end_date", "expedited_at"),
)
SOURCES = (ADVERSE_EVENTS,)

register(*SOURCES)
