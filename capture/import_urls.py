
app_name = "lab_import"
urlpatterns: list = []  # bulk lab import: being written
