"""Make someone a moderator (staff in the Moderators group), or stop them being one.

manage.py moderator add alice
manage.py moderator remove alice
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.groups import MODERATORS, ensure_moderators_group
from accounts.models import User


class Command(BaseCommand):
    help = "Add someone to the Moderators group (they become staff, never superuser), or remove them."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["add", "remove"])
        parser.add_argument("username")

    def handle(self, *, action: str, username: str, **options) -> None:
        user = User.objects.filter(username__iexact=username).first()
        if user is None:
            raise CommandError(f"There's no account @{username}. Check the handle and try again.")
        group = ensure_moderators_group()
        if action == "add":
            if user.is_suspended:
                raise CommandError(f"@{user.username} is suspended. Reinstate them first.")
            user.groups.add(group)
            user.is_staff = True
            user.save(update_fields=["is_staff"])
            self.stdout.write(f"@{user.username} is now a moderator: they can sign in at /admin/.")
        else:
            user.groups.remove(group)
            if not user.is_superuser and not user.groups.exists() and not user.user_permissions.exists():
                user.is_staff = False
                user.save(update_fields=["is_staff"])
            self.stdout.write(f"@{user.username} is no longer in {MODERATORS}.")
