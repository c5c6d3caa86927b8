from django.urls import path

from trial import token_views, views
from trial import worklists as lists

app_name = "trial"
urlpatterns = [
    path("participants/", views.participant_list, name="participant_list"),
    path("participants/screen/", views.screen, name="screen"),
    path("participants/reconsent/", views.reconsent_list, name="reconsent_list"),
    path("participants/<int:pk>/reconsent/", views.reconsent, name="reconsent"),
    path("participants/<int:pk>/", views.participant_detail, name="participant_detail"),
    path("participants/<int:pk>/enrol/", views.enrol, name="enrol"),
    path("matrix/", views.matrix, name="matrix"),
    path("participants/visits-to-do/", lists.worklist_page, {"worklist": lists.VISITS_TO_DO}, name="work_visits"),
    path("participants/to-enrol/", lists.worklist_page, {"worklist": lists.CANDIDATES}, name="work_candidates"),
    path("accounts/tokens/", token_views.token_list, name="tokens"),
    path("accounts/tokens/<str:key>/revoke/", token_views.token_revoke, name="token_revoke"),
]
