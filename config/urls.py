from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path

from config.health import healthz, live
from config.observability import metrics
from reports.home import home
from trial import urls as trial_urls
from trial.token_views import LogoutView


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    # Resolved per request: in production the static manifest (collectstatic) names the file, not the URLconf.
    return HttpResponsePermanentRedirect(static("favicon.ico"))


urlpatterns = [
    # The home page is every role's worklist, built in the top layer (reports/home.py); it keeps the name
    # trial:dashboard that every page reverses.
    path("", include(([path("", home, name="dashboard"), *trial_urls.urlpatterns], trial_urls.app_name))),
    path("", include("capture.urls")),
    path("imports/", include("capture.import_urls")),
    path("review/", include("capture.review_urls")),
    path("inbox/", include("capture.inbox_urls")),
    path("api/", include("trial.api_urls")),
    path("api/v1/", include("capture.api_urls")),
    path("api/v1/", include("capture.review_api_urls")),
    path("safety/", include("safety.urls")),
    path("api/v1/", include("safety.api_urls")),
    path("reports/", include("reports.urls")),
    path("api/v1/", include("reports.api_urls")),
    path("exports/", include("reports.export_urls")),
    path("api/v1/exports/", include("reports.export_api_urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", healthz, name="healthz"),
    path("healthz/live", live, name="healthz-live"),
    path("metrics", metrics, name="metrics"),
    # Browsers ask for /favicon.ico whatever the page says.
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
]

handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"

if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()
