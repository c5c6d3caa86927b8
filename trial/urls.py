from django.urls import path

app_name = "trial"
urlpatterns: list = []  # pages: being written
