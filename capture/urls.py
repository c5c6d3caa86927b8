from django.urls import path

from capture import views
from capture.logs import views as log_views

app_name = "capture"
urlpatterns = [
    path("visits/<int:visit_id>/", views.visit, name="visit"),
    path("visits/<int:visit_id>/forms/<str:form_code>/", views.form_entry, name="form"),
    path("visits/<int:visit_id>/forms/<str:form_code>/check/<str:item_code>/", views.check_item, name="check_item"),
    path("visits/<int:visit_id>/forms/<str:form_code>/audit/", views.form_audit, name="form_audit"),
    path("visits/<int:visit_id>/forms/<str:form_code>/audit/<str:item_code>/", views.form_audit, name="item_audit"),
    path("participants/<int:participant_id>/logs/", log_views.participant_logs_page, name="participant_logs"),
    path("participants/<int:participant_id>/logs/<str:form_code>/new/", log_views.log_row_add, name="log_row_add"),
    path("log-rows/<int:row_id>/", log_views.log_row, name="log_row"),
    path("log-rows/<int:row_id>/remove/", log_views.log_row_remove_view, name="log_row_remove"),
    path("log-rows/<int:row_id>/verify/", log_views.log_row_verify, name="log_row_verify"),
]
