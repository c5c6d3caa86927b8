"""The export API's URLs, included at /api/v1/exports/."""

from django.urls import path

from reports import export_api

app_name = "export_api"

urlpatterns = [
    path("odm/", export_api.OdmExportView.as_view(), name="odm"),
    path("csv/", export_api.CsvExportView.as_view(), name="csv"),
]
