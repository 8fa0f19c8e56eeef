from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "moderation"
    verbose_name = "Moderation"

    def ready(self) -> None:
        # Moderation plugs into the apps below it; docs/architecture.md lists these hooks.
        from accounts import hooks as account_hooks
        from rooms import hooks as room_hooks

        from . import selectors, services

        room_hooks.entry_rule_register(
            room_hooks.EntryRule(
                name="not_blocked",
                lets_in=lambda space, user: (
                    not selectors.is_blocked_by_host(host_id=space.host_id, user_id=user.pk)
                ),
                refusal="The host has blocked you from their Spaces, so you can't join this one.",
            )
        )
        room_hooks.participant_removed.connect(
            services.audit_participant_removed, dispatch_uid="moderation-audit"
        )
        account_hooks.profile_context_register(selectors.profile_block_state)
        account_hooks.moderator_acted.connect(
            services.audit_moderator_action, dispatch_uid="moderation-audit"
        )
