urlpatterns: list = []  # API: being written
