from django.urls import path

from capture import inbox_views

app_name = "inbox"
urlpatterns = [
    path("", inbox_views.mine, name="mine"),
    path("queries/", inbox_views.queries, name="queries"),
    path("sdv/", inbox_views.sdv, name="sdv"),
]
