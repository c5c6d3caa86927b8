from django.urls import path

from safety import views
from safety import worklists as lists
from safety.sae import views as sae_views
from trial.worklists import worklist_page

app_name = "safety"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("listing/", views.listing, name="listing"),
    path("listing.csv", views.listing_csv, name="listing_csv"),
    path("notifications/", views.notifications, name="notifications"),
    path("to-sign/", worklist_page, {"worklist": lists.EVENTS_TO_SIGN}, name="work_events_to_sign"),
    path("proposals/", worklist_page, {"worklist": lists.PROPOSALS}, name="work_proposals"),
    path("serious/all/", worklist_page, {"worklist": lists.SERIOUS_EVENTS}, name="work_serious_events"),
    path("serious/", worklist_page, {"worklist": lists.SERIOUS_ON_THE_CLOCK}, name="work_serious"),
    path("notifications/badge/", views.notification_badge, name="notification_badge"),
    path(
        "participants/<int:participant_id>/adverse-events/",
        views.participant_adverse_events,
        name="participant_adverse_events",
    ),
    path(
        "participants/<int:participant_id>/adverse-events/new/",
        views.adverse_event_report,
        name="adverse_event_report",
    ),
    path("participants/<int:participant_id>/death/", views.death_report, name="death_report"),
    # Named "adverse_event": the SAE notification emails link to it.
    path("adverse-events/<int:pk>/", views.adverse_event_detail, name="adverse_event"),
    path("adverse-events/<int:pk>/edit/", views.adverse_event_update, name="adverse_event_update"),
    path("adverse-events/<int:pk>/confirm/", views.adverse_event_confirm, name="adverse_event_confirm"),
    path("adverse-events/<int:pk>/dismiss/", views.adverse_event_dismiss, name="adverse_event_dismiss"),
    path("adverse-events/<int:pk>/verify/", views.adverse_event_verify, name="adverse_event_verify"),
    path("adverse-events/<int:pk>/sign/", views.adverse_event_sign, name="adverse_event_sign"),
    path("adverse-events/<int:pk>/sae/", sae_views.sae_details, name="sae_details"),
    path("adverse-events/<int:pk>/sae/reports/", sae_views.sae_report_send, name="sae_report_send"),
    path("adverse-events/<int:pk>/sae/sponsor/", sae_views.sae_sponsor_causality, name="sae_sponsor_causality"),
]
