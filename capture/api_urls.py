"""The capture API's URLs, included at /api/v1/ beside the trial's resources."""

from django.urls import path

from capture import api

app_name = "capture_api"

urlpatterns = [
    path("visits/<int:visit_id>/forms/", api.VisitFormListView.as_view(), name="visit-forms"),
    path("visits/<int:visit_id>/forms/<str:form_code>/", api.VisitFormView.as_view(), name="visit-form"),
]
