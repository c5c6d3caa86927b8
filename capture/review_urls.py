
app_name = "review"
urlpatterns: list = []  # being written
