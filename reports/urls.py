from django.urls import path

from reports import run_views, views

app_name = "reports"

urlpatterns = [
    path("", run_views.runs_page, name="runs"),
    path("runs/<int:pk>/", run_views.run_row, name="run_row"),
    # Named "download": the scheduled reports' emails link to it.
    path("runs/<int:pk>/download/", run_views.download, name="download"),
    path("runs/<int:pk>/retry/", run_views.retry, name="retry"),
    path("schedules/", run_views.schedules_page, name="schedules"),
    path("schedules/<int:pk>/", run_views.schedule_edit, name="schedule_edit"),
    path("sae/<int:pk>/cioms.pdf", views.sae_cioms, name="sae_cioms"),
]
