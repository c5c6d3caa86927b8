"""The review pages, included at /review/: queries, source data verification, signatures and locks."""

from django.urls import path

from capture import review_views as views

app_name = "review"
urlpatterns = [
    path("participants/<int:participant_id>/", views.participant_review, name="participant"),
    path("participants/<int:participant_id>/sign/", views.casebook_sign, name="casebook_sign"),
    path("participants/<int:participant_id>/lock/", views.participant_lock, name="participant_lock"),
    path("visits/<int:visit_id>/queries/new/", views.query_raise, name="query_raise"),
    path(
        "records/<slug:record_type>/<int:record_id>/queries/new/", views.record_query_raise, name="record_query_raise"
    ),
    path("visits/<int:visit_id>/sign/", views.visit_sign, name="visit_sign"),
    path("visits/<int:visit_id>/lock/", views.visit_lock, name="visit_lock"),
    path("visits/<int:visit_id>/forms/<str:form_code>/verify/", views.verify, name="verify"),
    path("visits/<int:visit_id>/forms/<str:form_code>/lock/", views.form_lock, name="form_lock"),
    path("queries/<int:query_id>/", views.query_detail, name="query"),
    path("queries/<int:query_id>/answer/", views.query_step, {"step": "answer"}, name="query_answer"),
    path("queries/<int:query_id>/close/", views.query_step, {"step": "close"}, name="query_close"),
    path("queries/<int:query_id>/reopen/", views.query_step, {"step": "reopen"}, name="query_reopen"),
    path("locks/<int:lock_id>/release/", views.lock_release, name="lock_release"),
]
