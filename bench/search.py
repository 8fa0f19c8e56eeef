"""Search over 100,000 people and 50,000 Spaces on PostgreSQL: how long do the search's queries take?

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spaces .venv/bin/python bench/search.py

A scratch database is created next to the configured one (Django's test-database machinery, name
suffixed `_bench_search`), migrated (so it has the trigram GIN indexes), filled with bulk_create,
VACUUM ANALYZEd (as autovacuum would after a bulk load) and dropped afterwards. People get
generated handles and display names; Spaces get titles from a word list, one to three topics, and
a state (about 5 % live, 25 % upcoming, the rest ended, which search skips).

Then `--queries` varied searches, in a fixed shuffled order after a short warm-up: handle prefixes
(2 to 6 letters), display-name words, names and handles with one typo (a wrong, missing or swapped
letter), topics, title words and title words with a typo. Each is timed twice: the search's queries
alone (the transaction the search view runs: the typo threshold, people, Spaces) and the whole view
through Django's test client (queries and rendering). `typo_found` is the share of typo searches
whose intended person is among the results; `typo_missed_behind_exact` the share that missed it
because the misspelling is itself part of 20 other people's names (exact matches come first).

Prints one JSON line: counts, p50/p95/max of both timings in ms, typo_found, and whether EXPLAIN of
a typical search reads the trigram indexes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import percentile  # noqa: E402


def words(text: str) -> list[str]:
    return text.split()


SYLLABLES = words(
    "an ar ba be bo ca ce da de di el em fa fe ga gi ha he io ja jo ka ke la le li lo lu ma me mi mo "
    "na ne ni no ol pa pe pi ra re ri ro sa se si so ta te ti to ul va ve vi xa ya yo za ze"
)
WORDS = words(
    "jazz music startups python design coffee football climate poetry cinema travel books crypto "
    "health running cooking science history philosophy comedy gaming fashion radio politics art "
    "photography gardening astronomy economics parenting language"
)
TITLE_WORDS = words(
    "late night morning weekly open chat talk live session stories questions answers club hour "
    "roundtable deep dive beginners experts news review future lessons building friends community"
)


def name(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts))


def typo(rng: random.Random, word: str) -> str:
    """One wrong, missing or swapped letter, away from the first letter."""
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("wrong", "missing", "swapped"))
    if kind == "wrong":
        return word[:i] + rng.choice([c for c in string.ascii_lowercase if c != word[i]]) + word[i + 1 :]
    if kind == "missing":
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--spaces", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (to EXPLAIN in it)")
    args = parser.parse_args()

    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "spaces_project.settings"
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL to a PostgreSQL server: this benchmark measures its trigram search.")

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.urls import reverse
    from django.utils import timezone

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    db = settings.DATABASES["default"]
    db["TEST"] = {**db.get("TEST", {}), "NAME": f"{db['NAME']}_bench_search"}
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        from accounts.models import User
        from accounts.rules import SEARCH_RESULTS
        from accounts.selectors import search_people, search_typo_threshold
        from rooms.models import Space
        from rooms.selectors import search_spaces

        rng = random.Random(19)
        started = time.monotonic()
        handles: set[str] = set()
        people = []
        while len(people) < args.people:
            handle = name(rng, rng.randint(2, 4)) + (str(rng.randint(1, 999)) if rng.random() < 0.4 else "")
            if handle in handles or len(handle) > 30:
                continue
            handles.add(handle)
            display = f"{name(rng, rng.randint(2, 3)).title()} {name(rng, rng.randint(2, 4)).title()}"
            people.append(
                User(username=handle, display_name=display, password="!", follower_count=rng.randint(0, 5000))
            )
        User.objects.bulk_create(people, batch_size=5000)
        host_ids = list(User.objects.order_by("?").values_list("pk", flat=True)[:20_000])
        now = timezone.now()
        spaces = []
        for _ in range(args.spaces):
            roll = rng.random()
            state = "live" if roll < 0.05 else "scheduled" if roll < 0.30 else "ended"
            title = " ".join(rng.choice(TITLE_WORDS + WORDS) for _ in range(rng.randint(2, 5))).capitalize()
            spaces.append(
                Space(
                    host_id=rng.choice(host_ids),
                    title=title[:70],
                    topics=rng.sample(WORDS, rng.randint(1, 3)),
                    state=state,
                    started_at=now if state != "scheduled" else None,
                    scheduled_for=now + dt.timedelta(days=rng.randint(1, 30))
                    if state == "scheduled"
                    else None,
                )
            )
        Space.objects.bulk_create(spaces, batch_size=5000)
        # What autovacuum does to a table after a bulk load: statistics, and the GIN indexes' pending
        # lists merged in (until then the planner prices the trigram indexes far too high).
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE accounts_user")
            cursor.execute("VACUUM ANALYZE rooms_space")
        fill_s = time.monotonic() - started

        sample = rng.sample(people, 200)
        # (kind, query, the handle a typo search should find)
        queries: list[tuple[str, str, str | None]] = []
        for person in sample[:60]:
            queries.append(("handle_prefix", person.username[: rng.randint(2, 6)], None))
        for person in sample[60:100]:
            queries.append(("name_word", rng.choice(person.display_name.split()), None))
        for person in sample[100:160]:
            queries.append(("handle_typo", typo(rng, person.username.rstrip(string.digits)), person.username))
        for person in sample[160:200]:
            word = max(person.display_name.split(), key=len)
            queries.append(("name_typo", typo(rng, word.lower()), person.username))
        for word in WORDS:
            queries.append(("topic", word, None))
            queries.append(("topic_typo", typo(rng, word), None))
        for word in TITLE_WORDS:
            queries.append(("title_prefix", word[: rng.randint(3, len(word))], None))
        while len(queries) < args.queries:
            queries.append(("topic_typo", typo(rng, rng.choice(TITLE_WORDS + WORDS)), None))
        rng.shuffle(queries)
        queries = queries[: args.queries]

        def run(q: str):
            with transaction.atomic():
                search_typo_threshold()
                return search_people(query=q), search_spaces(query=q)

        for _, q, _ in queries[:20]:  # warm-up: caches and prepared statements, as a running server has
            run(q)

        query_ms, typo_total, typo_found, typo_behind_exact = [], 0, 0, 0
        by_kind: dict[str, list[float]] = {}
        for kind, q, wanted in queries:
            t0 = time.perf_counter()
            found_people, _ = run(q)
            query_ms.append((time.perf_counter() - t0) * 1000)
            by_kind.setdefault(kind, []).append(query_ms[-1])
            if wanted:
                typo_total += 1
                if any(p.username == wanted for p in found_people):
                    typo_found += 1
                elif len(found_people) == SEARCH_RESULTS and all(
                    q.upper() in f"{p.username} {p.display_name}".upper() for p in found_people
                ):
                    # The misspelling is itself part of 20 other people's names: exact matches
                    # come first, so the typo pass never ran.
                    typo_behind_exact += 1

        client = Client()
        url = reverse("search")
        view_ms = []
        for _, q, _ in queries:
            t0 = time.perf_counter()
            response = client.get(url, {"q": q})
            view_ms.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.status_code

        # The plans of a typo search as the selectors run it (queries captured, then EXPLAINed).
        with CaptureQueriesContext(connection) as captured:
            run(typo(rng, "roberto"))
        plans = []
        with transaction.atomic(), connection.cursor() as cursor:
            search_typo_threshold()
            for query in captured.captured_queries:
                if query["sql"].startswith("SELECT") and "set_config" not in query["sql"]:
                    cursor.execute("EXPLAIN " + query["sql"])
                    plans.append("\n".join(row[0] for row in cursor.fetchall()))
        plan = "\n".join(plans)

        print(
            json.dumps(
                {
                    "people": args.people,
                    "spaces": args.spaces,
                    "queries": len(queries),
                    "fill_s": round(fill_s, 1),
                    "queries_p50_ms": round(percentile(query_ms, 50), 1),
                    "queries_p95_ms": round(percentile(query_ms, 95), 1),
                    "queries_max_ms": round(max(query_ms), 1),
                    "view_p50_ms": round(percentile(view_ms, 50), 1),
                    "view_p95_ms": round(percentile(view_ms, 95), 1),
                    "p50_ms_by_kind": {
                        kind: round(percentile(ms, 50), 1) for kind, ms in sorted(by_kind.items())
                    },
                    "typo_found": round(typo_found / typo_total, 3) if typo_total else None,
                    "typo_missed_behind_exact": round(typo_behind_exact / typo_total, 3)
                    if typo_total
                    else None,
                    "uses_trigram_indexes": "user_search_trgm" in plan and "space_search_trgm" in plan,
                    "target_p95_ms": 50,
                    "cpus": os.cpu_count(),
                }
            )
        )
    finally:
        if args.keep:
            print(f"kept database {connection.settings_dict['NAME']}", file=sys.stderr)
        else:
            connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
