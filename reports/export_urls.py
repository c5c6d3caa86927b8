"""The exports page's URL, included at /exports/. The downloads themselves are the API's (/api/v1/exports/)."""

from django.urls import path

from reports import views

app_name = "exports"

urlpatterns = [
    path("", views.exports, name="index"),
]
