from django.urls import path

from capture import import_views

app_name = "lab_import"
urlpatterns = [
    path("labs/", import_views.upload, name="upload"),
    path("labs/<int:pk>/", import_views.preview, name="preview"),
]
