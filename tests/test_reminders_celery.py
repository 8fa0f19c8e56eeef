"""End to end: real Celery workers on Redis deliver through a real SMTP server, exactly once.

Needs REDIS_URL (skipped locally without it, failed in strict CI). The SMTP server is aiosmtpd,
started by the test; the database is the test database, shared with the worker processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from notifications.models import Delivery
from rooms import reminders, scheduling
from tests.conftest import ARTIFACTS, ROOT, child_database_env, free_port, stop_process
from tests.factories import UserFactory
from tests.strict import require
from tests.test_scheduling import make_host, schedule

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class Sink:
    """An SMTP server that records every message it accepts.

    `block_at=n` makes the n-th message's RCPT wait until `release` is set, so a test can kill
    the sending worker at a known point in the middle of a batch.
    """

    def __init__(self, block_at: int | None = None):
        self.received: list[tuple[str, str, str]] = []  # (recipient, subject, message id)
        self.lock = threading.Lock()
        self.rcpts = 0
        self.block_at = block_at
        self.blocked = threading.Event()
        self.release = threading.Event()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpts += 1
            n = self.rcpts
        if n == self.block_at:
            self.blocked.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content)
        subject = str(make_header(decode_header(message["Subject"])))
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append((rcpt, subject, message["Message-ID"]))
        return "250 Message accepted for delivery"

    def pairs(self) -> Counter:
        with self.lock:
            return Counter((rcpt, subject) for rcpt, subject, _ in self.received)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.controller.stop()


@pytest.fixture
def redis_broker(settings):
    url = os.environ.get("REDIS_URL", "")
    require(bool(url), "Redis (REDIS_URL)")
    import redis

    # Our own Redis database (REDIS_URL is per engineer/CI job): start from an empty queue.
    redis.Redis.from_url(url).flushdb()
    from spaces_project.celery import app

    assert app.conf.broker_url.startswith("redis://"), app.conf.broker_url
    return url


@pytest.fixture
def smtp_settings(settings):
    def point_at(sink: Sink) -> dict[str, str]:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 10
        return {"EMAIL_URL": f"smtp://127.0.0.1:{sink.port}"}

    return point_at


def wait_until(condition, timeout: float, every: float = 0.25, tick=None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick:
            tick()
        if condition():
            return True
        time.sleep(every)
    return condition()


def in_thread_worker():
    from celery.contrib.testing.worker import start_worker

    from spaces_project.celery import app

    return start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=30)


def test_a_real_worker_delivers_each_notice_once_through_smtp(redis_broker, smtp_settings):
    from notifications.tasks import sweep

    host = make_host(email="host@example.com", display_name="Ana")
    ada, bo, cy, di, ed = (
        UserFactory(username=n, email=f"{n}@example.com") for n in ["ada", "bo", "cy", "di", "ed"]
    )
    moved = schedule(host, hours=48, title="Moved")
    for person in (ada, bo, cy):
        reminders.reminder_set(user=person, space=moved)
    reminders.reminder_remove(user=cy, space=moved)
    scheduling.space_reschedule(space=moved, by=host, scheduled_for=moved.scheduled_for + timedelta(days=1))
    cancelled = schedule(host, hours=50, title="Cancelled")
    for person in (ada, di):
        reminders.reminder_set(user=person, space=cancelled)
    scheduling.space_cancel(space=cancelled, by=host)
    live = schedule(host, hours=52, title="Early")
    for person in (bo, ed):
        reminders.reminder_set(user=person, space=live)
    # The host goes live early (this is what space_start does on commit).
    live.state, live.started_at = "live", timezone.now()
    live.save(update_fields=["state", "started_at"])
    reminders.space_live_notify(space=live)
    # And the moved Space's new time arrives.
    Delivery.objects.filter(space_id=moved.pk, status="pending").update(due_at=timezone.now())

    expected = Counter(
        {
            ("ada@example.com", "New time: Moved"): 1,
            ("bo@example.com", "New time: Moved"): 1,
            ("ada@example.com", "Starting now: Moved"): 1,
            ("bo@example.com", "Starting now: Moved"): 1,
            ("host@example.com", "In 30 minutes: Moved"): 1,
            ("host@example.com", "It's time: Moved"): 1,
            ("ada@example.com", "Cancelled: Cancelled"): 1,
            ("di@example.com", "Cancelled: Cancelled"): 1,
            ("bo@example.com", "Ana is live: Early"): 1,
            ("ed@example.com", "Ana is live: Early"): 1,
        }
    )
    with Sink() as sink:
        smtp_settings(sink)
        with in_thread_worker():
            # Beat's job, through the broker: several overlapping sweeps.
            for _ in range(3):
                sweep.delay()
            assert wait_until(lambda: sum(sink.pairs().values()) >= len(expected), 30, tick=sweep.delay)
            time.sleep(2)  # nothing more is to arrive: anything sent twice would arrive by now
            for _ in range(3):
                sweep.delay()
            time.sleep(1)
    assert sink.pairs() == expected
    assert len({mid for *_, mid in sink.received}) == len(expected)
    assert not Delivery.objects.filter(status__in=["pending", "claimed"], due_at__lte=timezone.now()).exists()


def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_nothing(redis_broker, smtp_settings, settings):
    from notifications.outbox import outbox_sweep
    from notifications.tasks import send_batch, sweep

    settings.NOTIFICATIONS_CLAIM_TIMEOUT = 3
    settings.NOTIFICATIONS_BATCH_SIZE = 10
    host = make_host(email="host@example.com")
    space = schedule(host, hours=24, title="Crowd")
    people = [UserFactory(username=f"fan{i}", email=f"fan{i}@example.com") for i in range(40)]
    for person in people:
        reminders.reminder_set(user=person, space=space)
    Delivery.objects.filter(kind=reminders.SPACE_STARTING).update(due_at=timezone.now())
    expected = Counter({(p.email, "Starting now: Crowd"): 1 for p in people})

    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"celery-killed-{uuid.uuid4().hex[:8]}.log"
    with Sink(block_at=15) as sink:
        env = {
            **os.environ,
            "DEBUG": "1",
            **child_database_env(),
            **smtp_settings(sink),
            "NOTIFICATIONS_CLAIM_TIMEOUT": "3",
            "NOTIFICATIONS_BATCH_SIZE": "10",
        }
        name = f"doomed-{uuid.uuid4().hex[:6]}@%h"
        command = ["celery", "-A", "spaces_project", "worker", "--pool=solo", "--loglevel=INFO", "-n", name]
        doomed = subprocess.Popen(
            [sys.executable, "-m", *command, "--without-mingle", "--without-gossip"],
            cwd=ROOT,
            env=env,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            for ids in outbox_sweep():  # 4 batches of 10 go to the broker
                send_batch.delay(ids)
            assert sink.blocked.wait(60), log_path.read_text()[-3000:]
            # 14 messages are through; the 15th is half-way through SMTP. Kill -9, no goodbye.
            os.kill(doomed.pid, signal.SIGKILL)
            doomed.wait(10)
        finally:
            stop_process(doomed)
        sink.release.set()
        assert sum(sink.pairs().values()) == 14
        # The dead worker's batch (the message in flight and the rest) is still claimed by it.
        stuck = list(Delivery.objects.filter(status="claimed").values_list("pk", flat=True))
        assert len(stuck) == 6

        with in_thread_worker():
            done = wait_until(
                lambda: (
                    not Delivery.objects.exclude(status="sent").filter(kind=reminders.SPACE_STARTING).exists()
                ),
                60,
                every=0.5,
                tick=sweep.delay,
            )
            time.sleep(2)
        assert done, Counter(Delivery.objects.values_list("status", flat=True))
    assert sink.pairs() == expected
    assert set(Delivery.objects.filter(pk__in=stuck).values_list("status", "attempts")) == {("sent", 2)}
