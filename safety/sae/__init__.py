"""Serious adverse events (ICH E2A): the report's own data, its versions (initial, follow-up 1..n, final), each
sent to the recipients through the expedited notice outbox, and the sponsor's causality assessment."""
