from django.urls import path

from capture import views

app_name = "capture"
urlpatterns = [
    path("visits/<int:visit_id>/", views.visit, name="visit"),
    path("visits/<int:visit_id>/forms/<str:form_code>/", views.form_entry, name="form"),
    path("visits/<int:visit_id>/forms/<str:form_code>/check/<str:item_code>/", views.check_item, name="check_item"),
    path("visits/<int:visit_id>/forms/<str:form_code>/audit/", views.form_audit, name="form_audit"),
    path("visits/<int:visit_id>/forms/<str:form_code>/audit/<str:item_code>/", views.form_audit, name="item_audit"),
]
