
app_name = "capture"
urlpatterns: list = []  # pages: being written
