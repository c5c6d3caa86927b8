"""The API's URLs, included at /api/: version 1 of the resources, the OpenAPI schema and its docs page."""

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import permissions
from rest_framework.routers import DefaultRouter

from trial import api

app_name = "api"

router = DefaultRouter()
# No `.json` twins of the routes: the actions take no `format` argument, and one format (JSON) is enough.
router.include_format_suffixes = False
router.register("sites", api.SiteViewSet, basename="site")
router.register("participants", api.ParticipantViewSet, basename="participant")
router.register("visits", api.VisitViewSet, basename="visit")
router.register("auth/tokens", api.TokenViewSet, basename="token")


class DocsPermission(permissions.BasePermission):
    """The schema and its docs show the whole API: to anyone while DEBUG is on, else only to a logged-in user."""

    def has_permission(self, request: HttpRequest, view: object) -> bool:
        return settings.DEBUG or bool(request.user and request.user.is_authenticated)


class SchemaView(SpectacularAPIView):
    permission_classes = [DocsPermission]


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI with its script served as a file (the Content-Security-Policy allows no inline script)."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(exclude=True)
    def get(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not DocsPermission().has_permission(request, self):
            return redirect_to_login(request.get_full_path())
        return super().get(request, *args, **kwargs)


urlpatterns = [
    path("v1/auth/token/", api.TokenObtainView.as_view(), name="token"),
    path("v1/auth/logout/", api.TokenLogoutView.as_view(), name="token_logout"),
    path("v1/auth/logout-all/", api.TokenLogoutAllView.as_view(), name="token_logout_all"),
    path("v1/", include(router.urls)),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(url_name="api:schema"), name="docs"),
]
