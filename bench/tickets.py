"""1,000 people try to buy one of 100 tickets at once: exactly 100 sold? how many errors? how fast?

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spaces .venv/bin/python bench/tickets.py
    .venv/bin/python bench/tickets.py                     # embedded: a throwaway SQLite file

A scratch database is created next to the configured one (Django's test-database machinery, name
suffixed `_bench_tickets`), migrated, and dropped afterwards. One ticketed Space with CAP tickets;
ATTEMPTS buyers, spread over THREADS threads that start together, each press "Buy ticket" through
the real view and then, in the local test checkout, pay (or abandon, with --abandon probability).
Someone told "sold out for now" (the last seats are in other people's checkouts) tries again, as a
person would; those retries are counted but are not attempts.

Prints one JSON line: sold, cap, attempts, errors (exceptions or 4xx/5xx pages), error_rate,
attempts_per_s and buy latency percentiles.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import percentile  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1000)
    parser.add_argument("--cap", type=int, default=100)
    parser.add_argument("--threads", type=int, default=32, help="stay well below max_connections")
    parser.add_argument("--abandon", type=float, default=0.2, help="share of checkouts abandoned")
    args = parser.parse_args()

    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "spaces_project.settings"
    os.environ["STRIPE_SECRET_KEY"] = ""  # the local test checkout: no network in the measurement
    # Every thread is a client holding a connection between its requests: a pool slot each.
    os.environ["DB_POOL_MAX"] = str(args.threads + 2)
    os.environ.setdefault("DB_POOL_TIMEOUT", "30")
    if not os.environ.get("DATABASE_URL"):
        os.environ["SPACES_VAR_DIR"] = tempfile.mkdtemp(prefix="bench-tickets-")

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.messages import get_messages
    from django.db import connection, connections
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    setup_test_environment()  # the test client needs it; it also swaps in a local-memory email backend
    settings.ALLOWED_HOSTS = ["testserver"]
    db = settings.DATABASES["default"]
    db["TEST"] = {**db.get("TEST", {}), "NAME": f"{Path(str(db['NAME'])).stem}_bench_tickets"}
    if connection.vendor == "sqlite":
        db["TEST"]["NAME"] = str(Path(os.environ["SPACES_VAR_DIR"]) / "bench-tickets.sqlite3")
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        from tests.factories import make_users
        from tests.test_ticketing_support import ticketed_space
        from ticketing.models import Hold, LedgerEntry, Ticket

        space = ticketed_space(capacity=args.cap, price_cents=2500)
        buyers = make_users(args.attempts, prefix="benchbuyer")
        rng = random.Random(1)
        plan = [(b, rng.random() >= args.abandon) for b in buyers]

        lock = threading.Lock()
        outcomes: Counter = Counter()
        errors: list[str] = []
        latencies: list[float] = []
        barrier = threading.Barrier(args.threads)
        buy_url = reverse("ticketing:buy", args=[space.pk])

        def worker(chunk):
            mine, my_latencies, my_errors = Counter(), [], []
            try:
                barrier.wait(timeout=60)
                for buyer, pay in chunk:
                    client = Client()
                    client.force_login(buyer)
                    while True:
                        started = time.perf_counter()
                        response = client.post(buy_url)
                        my_latencies.append(time.perf_counter() - started)
                        if response.status_code >= 400:
                            my_errors.append(f"buy {response.status_code}")
                            break
                        location = response.get("Location", "")
                        if "/tickets/test-checkout/" in location:
                            done = client.post(location, {"outcome": "succeed" if pay else "abandon"})
                            if done.status_code >= 400:
                                my_errors.append(f"checkout {done.status_code}")
                            mine["paid" if pay else "abandoned"] += 1
                            break
                        said = [str(m) for m in get_messages(response.wsgi_request)][-1:]
                        if said and "for now" in said[0]:
                            mine["retries"] += 1
                            continue
                        mine["sold_out"] += 1
                        break
            except Exception as exc:  # noqa: BLE001 - counted as an error
                my_errors.append(repr(exc))
            finally:
                with lock:
                    outcomes.update(mine)
                    latencies.extend(my_latencies)
                    errors.extend(my_errors)
                connections.close_all()

        pool = [threading.Thread(target=worker, args=(plan[i :: args.threads],)) for i in range(args.threads)]
        started = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - started

        sold = Ticket.objects.filter(space=space, status=Ticket.Status.VALID).count()
        result = {
            "bench": "tickets",
            "database": connection.vendor,
            "threads": args.threads,
            "cap": args.cap,
            "attempts": args.attempts,
            "sold": sold,
            "exactly_cap": sold == args.cap,
            "sales_in_ledger": LedgerEntry.objects.filter(space=space, kind="sale").count(),
            "holds_left_open": Hold.objects.filter(space=space, status=Hold.Status.OPEN).count(),
            "paid": outcomes["paid"],
            "abandoned": outcomes["abandoned"],
            "sold_out": outcomes["sold_out"],
            "retries": outcomes["retries"],
            "errors": len(errors),
            "error_rate": round(len(errors) / args.attempts, 4),
            "seconds": round(elapsed, 2),
            "attempts_per_s": round(args.attempts / elapsed, 1),
            "buy_ms_p50": round(percentile(latencies, 50) * 1000, 1),
            "buy_ms_p95": round(percentile(latencies, 95) * 1000, 1),
            "buy_ms_max": round(max(latencies, default=0) * 1000, 1),
            "cpus": os.cpu_count(),
        }
        if errors:
            result["first_errors"] = errors[:3]
        print(json.dumps(result))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
