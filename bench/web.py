"""How fast the review app's busiest pages are on a large store.

    python bench/web.py                  # 50,000 calls, 200,000 findings (built once, kept)
    python bench/web.py --calls 5000     # a quicker run
    python bench/web.py --rebuild        # build the store again

Builds (or reuses) ``bench/data/web-<calls>.db``: calls over 180 days from 60
collectors in 6 teams, four turns each (in the full-text index), four findings per call
on average (2 to 6), three in ten findings decided, one call in ten assigned. Rows go straight in
with ``Store.bulk_insert``. Then it times, through the Flask test client with a
logged-in reviewer (and an admin for the dashboard), the queue (first page, a filter, a
deep page, a sort), transcript search (a common phrase, a rare one, a two-character
word, with filters) and the dashboard (30 and 180 days): the median of five requests
each, after one warm-up. The target is under 0.5 s a page.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout, package not installed
    sys.path.insert(0, str(REPO))

TARGET_SECONDS = 0.5
PASSWORD = "bench password 1"
SENTENCES = [
    ("collector", "您好，这里是客服中心，提醒您本期账单已经逾期。"),
    ("debtor", "我知道，下个月发工资就还。"),
    ("collector", "请您尽快通过官方 App 还款，以免产生更多费用。"),
    ("debtor", "好的，我会想办法的。"),
    ("collector", "今天再不还，我们就把你通讯录里的人挨个打一遍。"),
    ("collector", "你这个废物，借的时候挺痛快，现在装什么穷？"),
    ("collector", "再不还钱我们就上门找你，让你全家都知道。"),
    ("debtor", "你们不能这样，我要投诉。"),
    ("collector", "我们会通知你单位领导。"),
    ("collector", "把钱转到我个人账户上，这事就算了。"),
]
RULES = [("abuse-profanity", "abuse", "medium"), ("third-party-contact-list", "third_party", "critical"),
         ("threat-visit", "threat", "high"), ("third-party-contact", "third_party", "high"),
         ("cash-personal-account", "cash", "critical"), ("threat-public-exposure", "threat", "high")]
RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def build(path: Path, calls: int, seed: int = 13) -> None:
    from monitor.store import Store

    rng = random.Random(seed)
    store = Store(path)
    start = datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=8)))
    now = datetime.now(timezone.utc)
    call_rows, turn_rows, finding_rows, review_rows, assignment_rows = [], [], [], [], []
    findings_total = 0
    for n in range(calls):
        call_id = f"bench-{n:06d}"
        started = start + timedelta(minutes=rng.randrange(180 * 24 * 60))
        collector = f"C{rng.randrange(60):02d}"
        lines = rng.sample(SENTENCES, 4)
        for idx, (speaker, text) in enumerate(lines):
            turn_rows.append({"call_id": call_id, "idx": idx, "speaker": speaker, "text": text,
                              "start": idx * 4.0, "end": idx * 4.0 + 3.5, "confidence": 0.9})
        chosen = rng.sample(RULES, (2, 3, 4, 5, 6)[n % 5])  # four a call on average
        for rule, category, severity in chosen:
            turn = rng.randrange(4)
            finding_id = f"{call_id}:{turn}:{rule}"
            created = (now - timedelta(hours=rng.randrange(24 * 60))).isoformat(timespec="seconds")
            finding_rows.append({
                "id": finding_id, "call_id": call_id, "turn": turn, "rule": rule, "category": category,
                "severity": severity, "start": turn * 4.0, "end": turn * 4.0 + 3.5, "evidence": lines[turn][1],
                "matched": lines[turn][1][:4], "speaker_verified": 1, "legal_basis": "[]", "rules_version": "bench",
                "active": 1, "created_at": created, "updated_at": created,
            })
            if rng.random() < 0.3:
                review_rows.append({"finding_id": finding_id, "decision": rng.choice(["confirmed", "dismissed"]),
                                    "note": "", "reviewer": f"r{rng.randrange(8)}",
                                    "decided_at": (now - timedelta(hours=rng.randrange(24 * 30))).isoformat(timespec="seconds")})
        findings_total += len(chosen)
        call_rows.append({
            "id": call_id, "sha256": f"{n:064x}", "source": f"{call_id}.wav", "origin": "batch", "status": "done",
            "duration": 16.0, "started_at": started.isoformat(), "started_utc": started.astimezone(timezone.utc).isoformat(),
            "collector_id": collector, "debtor_id": f"D{rng.randrange(20000):05d}", "direction": "outbound",
            "caller_number": f"138{rng.randrange(10**8):08d}",
            "metadata": json.dumps({"team": f"T{int(collector[1:]) % 6}"}), "rules_version": "bench",
            "categories": json.dumps(sorted({c for _, c, _ in chosen})),
            "max_severity": max((s for _, _, s in chosen), key=RANK.get) if chosen else None,
            "created_at": started.astimezone(timezone.utc).isoformat(), "updated_at": now.isoformat(),
        })
        if rng.random() < 0.1:
            assignment_rows.append({"call_id": call_id, "reviewer": f"r{rng.randrange(8)}", "assigned_by": "admin",
                                    "assigned_at": now.isoformat(timespec="seconds")})
    for table, rows in (("calls", call_rows), ("turns", turn_rows), ("findings", finding_rows),
                        ("reviews", review_rows), ("assignments", assignment_rows)):
        store.bulk_insert(table, rows)
    store.db.execute("ANALYZE")
    store.close()
    print(f"built {path.name}: {len(call_rows):,} calls, {len(turn_rows):,} turns, {len(finding_rows):,} findings, "
          f"{len(review_rows):,} decisions", flush=True)


def timed(client, url: str, runs: int = 5) -> tuple[float, int]:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        response = client.get(url)
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds), response.status_code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()

    from werkzeug.security import generate_password_hash

    from monitor.detection.examples import load_engine
    from monitor.store import Store
    from monitor.web import create_app

    data = REPO / "bench" / "data"
    data.mkdir(parents=True, exist_ok=True)
    path = data / f"web-{args.calls}.db"
    if args.rebuild or not path.exists():
        for stale in data.glob(f"web-{args.calls}.db*"):
            stale.unlink()
        began = time.perf_counter()
        build(path, args.calls)
        print(f"  in {time.perf_counter() - began:.1f} s", flush=True)
    store = Store(path)
    quick = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    for name, role in (("bench-admin", "admin"), ("bench-reviewer", "reviewer")):
        if store.user(name) is None:
            store.add_user(name, quick, role)
    counts = store.db.execute("SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM findings)").fetchone()
    store.close()

    with tempfile.TemporaryDirectory() as instance:
        app = create_app({"TESTING": True, "DATABASE": str(path), "INSTANCE_PATH": instance,
                          "ENGINE": load_engine(None), "WTF_CSRF_ENABLED": False})
        clients = {}
        for name in ("bench-reviewer", "bench-admin"):
            client = app.test_client()
            assert client.post("/login", data={"username": name, "password": PASSWORD}).status_code == 302
            clients[name] = client
        reviewer, admin = clients["bench-reviewer"], clients["bench-admin"]
        pages = [
            ("queue, first page", reviewer, "/"),
            ("queue, unreviewed", reviewer, "/?status=unreviewed"),
            ("queue, one collector", reviewer, "/?collector=C07"),
            ("queue, category + dates", reviewer, "/?category=threat&since=2025-03-01&until=2025-03-31"),
            ("queue, page 200 of 50", reviewer, "/?page=200"),
            ("queue, oldest first, 200", reviewer, "/?sort=oldest&size=200"),
            ("search, common phrase", reviewer, "/search?q=通讯录"),
            ("search, rare phrase", reviewer, "/search?q=个人账户上"),
            ("search, 2 characters", reviewer, "/search?q=废物"),
            ("search, speaker+collector", reviewer, "/search?q=投诉&speaker=debtor&collector=C07"),
            ("dashboard, 30 days", admin, "/dashboard?since=2025-06-01&until=2025-06-30"),
            ("dashboard, 180 days", admin, "/dashboard?since=2025-01-01&until=2025-06-30"),
        ]
        print(f"store: {counts[0]:,} calls, {counts[1]:,} findings; median of 5 requests (after a warm-up)")
        slow = 0
        for label, client, url in pages:
            seconds, _ = timed(client, url)
            mark = "ok" if seconds < TARGET_SECONDS else "SLOW"
            slow += seconds >= TARGET_SECONDS
            print(f"  {label:28s} {seconds * 1000:7.0f} ms  {mark}   {url}", flush=True)
    print(f"{len(pages) - slow} of {len(pages)} pages under {TARGET_SECONDS} s")
    return 0 if not slow else 1


if __name__ == "__main__":
    sys.exit(main())
