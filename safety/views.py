"""Safety pages. Thin: each reads through a selector or calls one service."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from safety.services import adverse_event_or_404


@login_required
def adverse_event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    event = adverse_event_or_404(request.user, pk)
    return render(request, "safety/adverse_event.html", {"event": event})
