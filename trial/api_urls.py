"""The API's URLs, included at /api/: version 1 of the resources, the OpenAPI schema and its docs page."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from trial import api

app_name = "api"

router = DefaultRouter()
# No `.json` twins of the routes: the actions take no `format` argument, and one format (JSON) is enough.
router.include_format_suffixes = False
router.register("sites", api.SiteViewSet, basename="site")
router.register("participants", api.ParticipantViewSet, basename="participant")
router.register("visits", api.VisitViewSet, basename="visit")

urlpatterns = [
    path("v1/auth/token/", api.TokenObtainView.as_view(), name="token"),
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
