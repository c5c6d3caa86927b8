"""The capture tables each site's tally counts (trial/tallies.py): signatures and locks, voided or released too, as
the API lists them."""

from trial.tallies import Source, register

SIGNATURES = Source("signature", "capture_signature")
LOCKS = Source("lock", "capture_lock")
SOURCES = (SIGNATURES, LOCKS)

register(*SOURCES)
