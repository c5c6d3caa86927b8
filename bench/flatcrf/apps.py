from django.apps import AppConfig


class FlatCrfConfig(AppConfig):
    name = "bench.flatcrf"
    label = "flatcrf"
    default_auto_field = "django.db.models.BigAutoField"
