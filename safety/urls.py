from django.urls import path

from safety import views

app_name = "safety"

urlpatterns = [
    path("adverse-events/<int:pk>/", views.adverse_event_detail, name="adverse_event"),
]
