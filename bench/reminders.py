"""10,000 reminders due at once: how long until the last one is in its inbox?

    .venv/bin/python bench/reminders.py                       # embedded: SQLite + filesystem broker
    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/reminders.py

One scheduled Space, N people with a reminder on it. Their start-time notices are made due at one
instant T; real `celery worker` processes and a real `celery beat` (the Procfile's commands) deliver
them through SMTP to a local aiosmtpd sink in this process, which records each message as it
arrives. Prints one JSON line: seconds from T to the last delivery, sends per second, duplicates
(the same Message-ID twice) and missing (reminded people who got nothing).

The workers, beat, the database and the sink share the machine's CPUs; on a 2-core box the sink
alone takes a good part of one core.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port  # noqa: E402


class Sink:
    def __init__(self):
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, str, str]] = []  # (wall time, recipient, Message-ID)

    async def handle_DATA(self, server, session, envelope):
        now = time.time()
        # Headers only: parsing 10,000 whole messages would make the sink the bottleneck.
        message_id = ""
        for line in envelope.content.split(b"\r\n"):
            if not line:
                break
            if line[:11].lower() == b"message-id:":
                message_id = line[11:].strip().decode()
                break
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.arrivals.append((now, rcpt, message_id))
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="prefork children per worker")
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument(
        "--lead", type=float, default=3, help="seconds between workers ready and the due time"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-reminders-"))
    os.environ.setdefault("DEBUG", "1")
    os.environ["SPACES_VAR_DIR"] = str(tmp)  # a private filesystem broker and SQLite file
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    smtp_port = free_port()
    os.environ["EMAIL_URL"] = f"smtp://127.0.0.1:{smtp_port}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "spaces_project.settings"

    import django

    django.setup()
    from aiosmtpd.controller import Controller
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from notifications.models import Delivery
    from rooms import reminders, scheduling
    from rooms.models import Space

    (tmp / "celery" / "queue").mkdir(parents=True, exist_ok=True)
    (tmp / "celery" / "processed").mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=0)
    prefix = "benchrem"
    User.objects.filter(username__startswith=prefix).delete()

    setup_started = time.monotonic()
    host = User.objects.create(username=f"{prefix}_host", email="host@bench.invalid", hosting_granted=True)
    User.objects.bulk_create(
        [User(username=f"{prefix}{i}", email=f"{prefix}{i}@bench.invalid") for i in range(args.count)],
        batch_size=2000,
    )
    people = dict(
        User.objects.filter(username__startswith=prefix).exclude(pk=host.pk).values_list("pk", "email")
    )
    space = scheduling.space_schedule(
        host=host, title="Benchmark", scheduled_for=timezone.now() + timedelta(days=1)
    )
    reminders.reminder_set_many(space=space, user_ids=list(people))
    setup_seconds = time.monotonic() - setup_started

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()

    env = {**os.environ}
    if connection.vendor == "sqlite":
        env["SQLITE_PATH"] = str(settings.DATABASES["default"]["NAME"])
    logs = tmp / "logs"
    logs.mkdir()
    procs = []
    celery = [sys.executable, "-m", "celery", "-A", "spaces_project"]
    for n in range(args.workers):
        procs.append(
            subprocess.Popen(
                [
                    *celery,
                    "worker",
                    f"--concurrency={args.concurrency}",
                    "--loglevel=WARNING",
                    "-n",
                    f"bench{n}@%h",
                ],
                cwd=ROOT,
                env=env,
                stdout=(logs / f"worker{n}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
    procs.append(
        subprocess.Popen(
            [*celery, "beat", "--loglevel=WARNING", "-s", str(tmp / "beat-schedule")],
            cwd=ROOT,
            env=env,
            stdout=(logs / "beat.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
    )
    # Everyone's start time arrives at one instant, a little after the workers are up.
    started = time.monotonic()
    while time.monotonic() - started < 120:
        if all(b"ready." in (logs / f"worker{n}.log").read_bytes() for n in range(args.workers)):
            break
        time.sleep(0.2)
    due_wall = time.time() + args.lead
    due = timezone.now() + timedelta(seconds=args.lead)
    Delivery.objects.filter(space_id=space.pk, kind=reminders.SPACE_STARTING).update(due_at=due)
    Delivery.objects.filter(space_id=space.pk).exclude(kind=reminders.SPACE_STARTING).update(
        status=Delivery.Status.CANCELLED
    )
    Space.objects.filter(pk=space.pk).update(scheduled_for=due)

    expected = set(people.values())
    load_before = os.getloadavg()[0]
    sink_cpu_started = time.process_time()
    deadline = time.monotonic() + args.lead + args.timeout
    while time.monotonic() < deadline:
        with sink.lock:
            got = {rcpt for _, rcpt, _ in sink.arrivals}
        if expected <= got:
            break
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.2)
    time.sleep(3)  # a duplicate would show up now
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
    controller.stop()
    sink_cpu = time.process_time() - sink_cpu_started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # workers, their pool children, beat
    worker_cpu = children.ru_utime + children.ru_stime

    with sink.lock:
        arrivals = [a for a in sink.arrivals if a[1] in expected]
    ids = Counter(mid for _, _, mid in arrivals)
    delivered = {rcpt for _, rcpt, _ in arrivals}
    last = max((t for t, _, _ in arrivals), default=float("nan"))
    first = min((t for t, _, _ in arrivals), default=float("nan"))
    seconds = last - due_wall
    statuses = Counter(Delivery.objects.filter(space_id=space.pk).values_list("status", flat=True))
    result = {
        "bench": "reminders",
        "reminders": args.count,
        "database": connection.vendor,
        "broker": settings.CELERY_BROKER_URL.split("://")[0],
        "workers": args.workers,
        "concurrency": args.concurrency,
        "batch_size": settings.NOTIFICATIONS_BATCH_SIZE,
        "sweep_seconds": settings.NOTIFICATIONS_SWEEP_SECONDS,
        "cpus": os.cpu_count(),
        "setup_seconds": round(setup_seconds, 1),
        "first_delivery_seconds": round(first - due_wall, 2),
        "last_delivery_seconds": round(seconds, 2),
        "sends_per_second": round(len(delivered) / seconds, 1) if arrivals else 0,
        "delivered": len(delivered),
        "duplicates": sum(n - 1 for n in ids.values()),
        "missing": len(expected - delivered),
        "statuses": dict(statuses),
        # The CPU it took, so a run on a shared, busy machine can be read: at 2 free cores the
        # same work takes about (worker + sink + database) CPU seconds / 2.
        "cpu_seconds_workers_and_beat": round(worker_cpu, 1),
        "cpu_seconds_sink": round(sink_cpu, 1),
        "worker_cpu_ms_per_message": round(worker_cpu / max(1, len(delivered)) * 1000, 2),
        "load_average_at_start": round(load_before, 1),
    }
    User.objects.filter(username__startswith=prefix).delete()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
