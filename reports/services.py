"""Writes of the reports app.

`export_record`: taking trial data out of the system is itself recorded in the audit trail (21 CFR Part 11
asks who saw and took which records, and when), before the first byte of the download leaves.
"""

import json
from collections.abc import Mapping

from django.db import transaction

from trial.audit import AuditEntry, audit_write
from trial.models import Site


@transaction.atomic
def export_record(*, user: object, kind: str, params: Mapping[str, object], site: Site | None = None) -> None:
    """Record that `user` started downloading the export `kind` ("odm", "csv") with `params` (the sites it
    covers, whether it holds the audit trail). `site` is the one site of a single-site export.

    Called as the download starts, whether or not the client reads it to the end: what counts is that the
    data were released.
    """
    audit_write(
        user=user,
        site=site,
        entries=[
            AuditEntry(
                object_type="export",
                object_id=kind,
                action="download",
                new_value=json.dumps(dict(params), sort_keys=True, ensure_ascii=False),
            )
        ],
    )
