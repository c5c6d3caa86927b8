"""The report runs' API URLs, included at /api/v1/ beside the other apps' resources."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from reports import api

app_name = "reports_api"

router = SimpleRouter()
router.register("reports", api.ReportRunViewSet, basename="report")

urlpatterns = [path("", include(router.urls))]
