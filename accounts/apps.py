from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from .groups import ensure_moderators_group

        post_migrate.connect(ensure_moderators_group, dispatch_uid="accounts.moderators_group")

        from django.contrib.auth.signals import user_logged_in, user_logged_out

        from . import services

        def signed_in(sender, request, user, **kwargs):
            services.session_signed_in(user=user, session_key=request.session.session_key)

        def signed_out(sender, request, user, **kwargs):
            services.session_signed_out(session_key=request.session.session_key)

        user_logged_in.connect(signed_in, dispatch_uid="accounts.signed_in_session")
        user_logged_out.connect(signed_out, dispatch_uid="accounts.signed_out_session")
