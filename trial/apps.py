from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TrialConfig(AppConfig):
    name = "trial"
    verbose_name = _("Trial")

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import pre_save

        from trial.sessions import mark_activity
        from trial.tokens import revoke_on_credentials_change

        user_logged_in.connect(mark_activity, dispatch_uid="trial.sessions.mark_activity")
        pre_save.connect(
            revoke_on_credentials_change, sender=get_user_model(), dispatch_uid="trial.tokens.revoke_on_change"
        )
