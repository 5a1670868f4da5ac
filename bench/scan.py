"""Scan throughput on one core: utterances/s, calls/s, and where the time goes.

    .venv/bin/python bench/scan.py [--repeat N]

Inputs are the labelled utterances and calls shipped in tests/data (and the shared dev
set when it sits beside the repository), repeated to a few thousand lines. Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]


def _load(paths):
    records = []
    for path in paths:
        if path.exists():
            with open(path, encoding="utf-8") as handle:
                records.extend(json.loads(line) for line in handle if line.strip())
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=8, help="how many times to repeat the inputs")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    from monitor.detection.examples import load_engine
    from monitor.runs.scan import call_from_record, scan_lines

    shared = REPO.parent / "shared" / "devset"
    utterances = _load([REPO / "tests/data/probe_utterances.jsonl", shared / "utterances.jsonl"])
    calls = _load([REPO / "tests/data/probe_calls.jsonl", shared / "calls.jsonl"])
    zone = ZoneInfo("Asia/Shanghai")
    started = time.perf_counter()
    engine = load_engine()
    load_seconds = time.perf_counter() - started
    analyser = engine.pack.analyser

    utterance_lines = [json.dumps(r, ensure_ascii=False) for r in utterances] * args.repeat
    call_lines = [json.dumps(r, ensure_ascii=False) for r in calls] * args.repeat
    list(scan_lines(engine, utterance_lines, zone))  # warm caches (pinyin keys, jieba) first: steady state is measured

    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, pinned to one core")
    print(f"rules: {len(engine.pack.rules)} ({engine.pack.version}), loaded and examples checked in {load_seconds:.2f} s")

    t0 = time.perf_counter()
    out = list(scan_lines(engine, utterance_lines, zone))
    utterance_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    list(scan_lines(engine, call_lines, zone))
    call_seconds = time.perf_counter() - t0
    turns = sum(len(r["turns"]) for r in calls) * args.repeat
    print(f"utterances: {len(utterance_lines)} in {utterance_seconds:.2f} s = {len(utterance_lines) / utterance_seconds:,.0f} utterances/s"
          f" ({sum(1 for o in out if o.get('categories'))} flagged)")
    print(f"calls: {len(call_lines)} ({turns} turns) in {call_seconds:.2f} s = {len(call_lines) / call_seconds:,.0f} calls/s"
          f" ({turns / call_seconds:,.0f} turns/s)")

    # Where the time of an utterance goes: a full scan with the stages wrapped in
    # timers. Tokens are cut lazily, only for turns whose matchers need them.
    spent = {"analyse": 0.0, "tokens": 0.0, "signals": 0.0}

    def timed(key, func):
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return func(*a, **k)
            finally:
                spent[key] += time.perf_counter() - start
        return wrapper

    analyser.analyse = timed("analyse", analyser.analyse)
    analyser.tokens = timed("tokens", analyser.tokens)
    engine.signals = timed("signals", engine.signals)
    parsed = [call_from_record(json.loads(line), zone) for line in utterance_lines]
    start = time.perf_counter()
    for call in parsed:
        engine.scan(call)
    total = time.perf_counter() - start
    stages = [
        ("normalisation and pinyin keys", spent["analyse"]),
        ("tokenisation (jieba, when a matcher needs it)", spent["tokens"]),
        ("matchers (lexicons, regexes, guards)", spent["signals"] - spent["analyse"] - spent["tokens"]),
        ("durable_rules (facts, rules, actions)", total - spent["signals"]),
    ]
    print(f"time per utterance (instrumented run, {len(parsed) / total:,.0f} utterances/s):")
    for label, seconds in stages:
        print(f"  {label:46} {seconds / len(parsed) * 1e6:8.1f} µs  {seconds / total:6.1%}")


if __name__ == "__main__":
    main()
