from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CaptureConfig(AppConfig):
    name = "capture"
    verbose_name = _("Capture")

    def ready(self) -> None:
        from capture import tallies  # noqa: F401  (registers its sources)
        from capture.logs import records

        records.register()
