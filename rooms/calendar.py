""" "Add to calendar": one iCalendar event per scheduled Space.

The UID never changes, and SEQUENCE counts the moves (`rooms.ScheduleRevision`), so a
calendar that imports the file again updates the event it already has instead of adding another.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from urllib.parse import urlparse

from django.conf import settings
from django.utils import timezone
from icalendar import Calendar, Event

from .models import Space

# Spaces have no planned end; calendars need one.
DEFAULT_LENGTH = timedelta(hours=1)


def event_uid(space: Space) -> str:
    host = urlparse(settings.SITE_URL).hostname or "spaces.localhost"
    return f"space-{space.pk}@{host}"


def space_ics(*, space: Space, sequence: int) -> bytes:
    start = space.scheduled_for or space.started_at or space.created_at
    url = f"{settings.SITE_URL}{space.get_absolute_url()}"
    description = f"A Space hosted by {space.host.name} (@{space.host.username}).\n{url}"
    if space.topics:
        description = f"Topics: {', '.join(space.topics)}\n{description}"
    event = Event.new(
        uid=event_uid(space),
        sequence=sequence,
        stamp=timezone.now(),
        last_modified=space.updated_at,
        start=start.astimezone(UTC),
        end=start.astimezone(UTC) + DEFAULT_LENGTH,
        summary=space.title,
        description=description,
        url=url,
        location=url,
        status="CANCELLED" if space.state == Space.State.CANCELLED else "CONFIRMED",
    )
    calendar = Calendar.new(prodid="-//Spaces//Scheduled Spaces//EN", method="PUBLISH", subcomponents=[event])
    return calendar.to_ical()
