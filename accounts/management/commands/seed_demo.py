"""Create a small world to try Spaces in. Safe to run twice: it only fills in what is missing."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Count

from accounts import hooks
from accounts.models import Follow, User

DEMO_PASSWORD = "spaces-demo-2026"
HOST = ("ana", "Ana Ruiz", "Talks about open source, radio and the people who make both.")
PEOPLE = [
    ("ben", "Ben Okafor", "Product designer. Mostly listens."),
    ("chloe", "Chloé Martin", "Podcaster, occasional co-host."),
    ("dev", "Devi Rao", "Backend engineer; asks the awkward questions."),
    ("eli", "Eli Cohen", "Here for the music Spaces."),
]
AUDIENCE = 640  # enough followers for ana to host (default threshold 600)


class Command(BaseCommand):
    help = "Create demo accounts: a host with 600+ followers, a few speakers and listeners."

    def handle(self, *args, **options):
        password_hash = make_password(DEMO_PASSWORD)
        created_names: list[str] = []
        with transaction.atomic():
            demo = [HOST, *PEOPLE]
            for username, name, bio in demo:
                user, created = User.objects.get_or_create(
                    username=username,
                    defaults={
                        "display_name": name,
                        "bio": bio,
                        "email": f"{username}@example.com",
                        "password": password_hash,
                    },
                )
                EmailAddress.objects.get_or_create(
                    user=user, email=user.email, defaults={"verified": True, "primary": True}
                )
                if created:
                    created_names.append(username)
            existing = set(User.objects.filter(username__startswith="fan").values_list("username", flat=True))
            fans = [
                User(username=f"fan{i:04d}", display_name=f"Listener {i}", password="!")
                for i in range(AUDIENCE)
                if f"fan{i:04d}" not in existing
            ]
            User.objects.bulk_create(fans, batch_size=500)
            host = User.objects.get(username=HOST[0])
            people = list(User.objects.filter(username__in=[p[0] for p in PEOPLE]))
            fan_ids = User.objects.filter(username__startswith="fan").values_list("pk", flat=True)
            follows = [Follow(follower_id=pk, followee=host) for pk in fan_ids]
            follows += [Follow(follower=p, followee=host) for p in people]
            follows += [Follow(follower=host, followee=p) for p in people]
            Follow.objects.bulk_create(follows, ignore_conflicts=True, batch_size=1000)
            _recount(User.objects.filter(pk__in=[host.pk, *[p.pk for p in people], *fan_ids]))

        host.refresh_from_db()
        for _receiver, note in hooks.demo_seeded.send(sender=User, host=host, people=people):
            if note:
                self.stdout.write(note)
        self.stdout.write(
            self.style.SUCCESS(f"@{host.username} has {host.follower_count} followers and can host.")
        )
        if created_names:
            self.stdout.write("Demo accounts (sign in with these; shown only when first created):")
            for name in created_names:
                self.stdout.write(f"  {name:<8} password: {DEMO_PASSWORD}")
        else:
            self.stdout.write("Demo accounts already existed; nothing new to show.")


def _recount(users) -> None:
    """Set the denormalised counters from the follow rows (bulk_create bypasses the services)."""
    followers = dict(
        Follow.objects.filter(followee__in=users)
        .values_list("followee")
        .annotate(n=Count("pk"))
        .values_list("followee", "n")
    )
    following = dict(
        Follow.objects.filter(follower__in=users)
        .values_list("follower")
        .annotate(n=Count("pk"))
        .values_list("follower", "n")
    )
    batch = []
    for user in users.only("pk"):
        user.follower_count = followers.get(user.pk, 0)
        user.following_count = following.get(user.pk, 0)
        batch.append(user)
    User.objects.bulk_update(batch, ["follower_count", "following_count"], batch_size=500)
