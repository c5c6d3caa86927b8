
app_name = "inbox"
urlpatterns: list = []  # being written
