"""Pagination told its total when it is known without counting the list (trial/tallies.py, the summaries), so a
page of a list of 855,000 visits reads one page of rows and a few dozen tally rows, not every row."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import QuerySet
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request


class CountedPaginator(Paginator):
    """A paginator told its total (from the tallies or the summaries) instead of counting the list; without one,
    it counts."""

    def __init__(self, object_list: QuerySet, per_page: int, *, total: int | None) -> None:
        super().__init__(object_list, per_page)
        if total is not None:
            self.count = total  # the cached property's value, set ahead


class Pagination(LimitOffsetPagination):
    """The API's pagination (`limit`, `offset`): the total is the view's `tally_count()` when it gives one (the
    list is filtered by the user's sites alone, or by what the tallies count), else a COUNT of the list."""

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: object = None) -> list | None:
        tally_count = getattr(view, "tally_count", None)
        self.known_count = tally_count() if tally_count is not None else None
        return super().paginate_queryset(queryset, request, view)

    def get_count(self, queryset: QuerySet) -> int:
        if self.known_count is not None:
            return self.known_count
        return super().get_count(queryset)
