"""Log forms: forms whose rows repeat per participant rather than per visit (concomitant medications, medical
history, protocol deviations), declared in the protocol file's `log_forms` section.

A row (capture.models.LogRow) holds typed values (LogValue) parsed by the same edit checks as a visit form's;
queries on a row are queries on a record (capture/records.py, type "log_row"), so the review inboxes, threads,
audit and site scoping of visit queries apply unchanged.
"""
