from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "rooms"
    verbose_name = "Spaces"

    def ready(self) -> None:
        # Rooms plugs into notifications below it; docs/architecture.md lists these hooks.
        from notifications import hooks as notification_hooks

        from . import reminders

        notification_hooks.delivery_check_register(reminders.outbox_rows_not_owed)
        notification_hooks.email_footer_links_register(reminders.email_unremind_link)
        notification_hooks.email_link_actions[reminders.UNREMIND] = reminders.email_unremind
