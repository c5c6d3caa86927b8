"""The capture API's URLs, included at /api/v1/ beside the trial's resources."""

from django.urls import path

from capture import api
from capture.logs import api as log_api

app_name = "capture_api"

urlpatterns = [
    path("visits/<int:visit_id>/forms/", api.VisitFormListView.as_view(), name="visit-forms"),
    path("visits/<int:visit_id>/forms/<str:form_code>/", api.VisitFormView.as_view(), name="visit-form"),
    path(
        "participants/<int:participant_id>/logs/<str:form_code>/rows/",
        log_api.LogRowListView.as_view(),
        name="log-rows",
    ),
    path(
        "participants/<int:participant_id>/logs/<str:form_code>/rows/<int:repeat_key>/",
        log_api.LogRowView.as_view(),
        name="log-row",
    ),
    path(
        "participants/<int:participant_id>/logs/<str:form_code>/rows/<int:repeat_key>/remove/",
        log_api.LogRowRemoveView.as_view(),
        name="log-row-remove",
    ),
]
