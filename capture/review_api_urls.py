"""The review API's URLs, included at /api/v1/ beside the trial's and the capture API's resources."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from capture import review_api

app_name = "review_api"

router = SimpleRouter()
router.register("queries", review_api.QueryViewSet, basename="query")
router.register("signatures", review_api.SignatureViewSet, basename="signature")
router.register("locks", review_api.LockViewSet, basename="lock")

urlpatterns = [
    path("", include(router.urls)),
    path(
        "visits/<int:visit_id>/forms/<str:form_code>/verify/",
        review_api.VisitFormVerifyView.as_view(),
        name="visit-form-verify",
    ),
    path("visits/<int:visit_id>/sign/", review_api.VisitSignView.as_view(), name="visit-sign"),
    path("participants/<int:participant_id>/sign/", review_api.CasebookSignView.as_view(), name="casebook-sign"),
]
