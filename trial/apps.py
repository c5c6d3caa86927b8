from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TrialConfig(AppConfig):
    name = "trial"
    verbose_name = _("Trial")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from trial.sessions import mark_activity

        user_logged_in.connect(mark_activity, dispatch_uid="trial.sessions.mark_activity")
