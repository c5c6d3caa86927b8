"""What capture tells the apps above it, without importing them (dependencies point downward only)."""

from django.dispatch import Signal

# Sent inside form_save's transaction, after the values are written, with kwargs `form` (the FormInstance at its
# new version), `form_code` and `visit`. A receiver with work to do after the save registers it with
# transaction.on_commit, so nothing runs for a save that is rolled back.
form_saved = Signal()
