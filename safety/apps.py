from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SafetyConfig(AppConfig):
    name = "safety"
    verbose_name = _("Safety")

    def ready(self) -> None:
        from capture.signals import form_saved
        from safety import records, tallies  # noqa: F401  (tallies registers its sources)
        from safety.receivers import form_saved_receiver

        form_saved.connect(form_saved_receiver, dispatch_uid="safety.lab_grading")
        records.register()
