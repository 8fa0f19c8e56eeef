"""The Moderators group: staff who keep the platform safe through the admin, without being superusers.

The group is (re)built after every migrate, so its permissions always match this list.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

MODERATORS = "Moderators"

# "app_label.codename". Moderators never get auth.* (groups, permissions) rights.
MODERATOR_PERMISSIONS = [
    "accounts.view_user",
    "accounts.change_user",  # suspend and reinstate; privileges stay read-only (accounts/admin.py)
    "accounts.view_follow",
    "rooms.view_space",
    "rooms.change_space",
    "rooms.end_space",  # "end Space now" (rooms.services.space_end)
    "rooms.view_participant",  # who was in a Space (read-only inline on the Space admin)
    "moderation.view_report",
    "moderation.change_report",  # resolve and dismiss (reports are never added or deleted in the admin)
    "moderation.view_auditlog",  # read-only for everyone
    "moderation.view_hostblock",
    "moderation.view_feedback",
    "moderation.view_spacerating",
    "moderation.view_hostrating",
    "moderation.view_livespace",  # Spaces, live first, with "end Space now" (needs rooms.end_space)
    "ticketing.view_ticket",
    "ticketing.refund_ticket",  # one ticket at a time, in full (ticketing.services.ticket_refund)
    "ticketing.view_ledgerentry",
    "ticketing.view_ticketsettings",
    "ticketing.view_payoutaccount",
    "ticketing.view_hold",
]


def ensure_moderators_group(**kwargs) -> Group:
    group, _ = Group.objects.get_or_create(name=MODERATORS)
    perms = []
    for dotted in MODERATOR_PERMISSIONS:
        app_label, codename = dotted.split(".")
        perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        if perm is not None:
            perms.append(perm)
    group.permissions.set(perms)
    return group
