from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "rooms"
    verbose_name = "Spaces"

    def ready(self) -> None:
        # Rooms plugs into notifications below it; docs/architecture.md lists these hooks.
        from django.db import transaction
        from django.db.models.signals import post_delete, post_save

        from accounts import hooks as account_hooks
        from accounts.models import Follow
        from notifications import hooks as notification_hooks

        from . import golive, reminders, selectors

        # A profile lists the Spaces its person hosts.
        account_hooks.profile_context_register(selectors.profile_spaces)
        # seed_demo leaves a finished Space with a short replay.
        from .recordings.demo import demo_replay_seed

        account_hooks.demo_seeded.connect(demo_replay_seed, dispatch_uid="rooms-demo-replay")

        notification_hooks.delivery_check_register(reminders.outbox_rows_not_owed)
        notification_hooks.email_footer_links_register(reminders.email_unremind_link)
        notification_hooks.email_link_actions[reminders.UNREMIND] = reminders.EMAIL_UNREMIND
        notification_hooks.delivery_check_register(golive.outbox_rows_not_owed)
        notification_hooks.email_footer_links_register(golive.email_live_off_link)
        notification_hooks.email_link_actions[golive.LIVE_EMAIL_OFF] = golive.EMAIL_LIVE_OFF

        # Home's "Upcoming" list shows Spaces of the accounts someone follows.
        def follows_changed(sender, instance, **kwargs):
            follower_id = instance.follower_id
            transaction.on_commit(lambda: selectors.upcoming_changed(follower_id=follower_id))

        post_save.connect(follows_changed, sender=Follow, dispatch_uid="rooms-upcoming-follow")
        post_delete.connect(follows_changed, sender=Follow, dispatch_uid="rooms-upcoming-unfollow")
