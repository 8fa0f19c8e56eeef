from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from . import models, services

        # However a notification is written, the bell's cached count is forgotten.
        def notification_saved(sender, instance, created, **kwargs):
            if created:
                services.unread_changed(user_id=instance.user_id)

        post_save.connect(notification_saved, sender=models.Notification, dispatch_uid="notifications-unread")
