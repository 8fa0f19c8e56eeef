from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from .groups import ensure_moderators_group

        post_migrate.connect(ensure_moderators_group, dispatch_uid="accounts.moderators_group")
