from django.urls import path

from capture import inbox_views
from capture import worklists as lists
from trial.worklists import worklist_page

app_name = "inbox"
urlpatterns = [
    path("", inbox_views.mine, name="mine"),
    path("queries/", inbox_views.queries, name="queries"),
    path("sdv/", inbox_views.sdv, name="sdv"),
    # Worklists of the home page, in full (trial/worklists.py).
    path("sdv/forms/", worklist_page, {"worklist": lists.FORMS_AWAITING_SDV}, name="sdv_forms"),
    path("forms/incomplete/", worklist_page, {"worklist": lists.INCOMPLETE_FORMS}, name="forms_incomplete"),
    path("forms/to-lock/", worklist_page, {"worklist": lists.FORMS_TO_LOCK}, name="forms_to_lock"),
    path("visits/to-sign/", worklist_page, {"worklist": lists.VISITS_TO_SIGN}, name="visits_to_sign"),
    path("casebooks/to-sign/", worklist_page, {"worklist": lists.CASEBOOKS_TO_SIGN}, name="casebooks_to_sign"),
]
