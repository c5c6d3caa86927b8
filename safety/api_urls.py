"""The safety API's URLs, included at /api/v1/ beside the trial's, the capture API's and the review API's."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from safety import api
from safety.sae import api as sae_api

app_name = "safety_api"

router = SimpleRouter()
router.register("adverse-events", api.AdverseEventViewSet, basename="adverse-event")
router.register("survival", api.SurvivalViewSet, basename="survival")

urlpatterns = [
    path("", include(router.urls)),
    path("participants/<int:participant_id>/death-report/", api.DeathReportView.as_view(), name="death-report"),
    path("adverse-events/<int:pk>/sae/", sae_api.SaeView.as_view(), name="sae"),
    path("adverse-events/<int:pk>/sae/reports/", sae_api.SaeReportSubmitView.as_view(), name="sae-reports"),
    path(
        "adverse-events/<int:pk>/sae/sponsor-causality/",
        sae_api.SponsorCausalityView.as_view(),
        name="sae-sponsor-causality",
    ),
]
