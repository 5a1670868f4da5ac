"""Scan throughput on one core: utterances/s, calls/s, and where the time goes.

    .venv/bin/python bench/scan.py [--similarity on|off|both]

Inputs are the labelled utterances and calls kept in the repository (tests/data, corpus/,
the blind sets 1, 3 and 4 in bench/data) and the shared dev set when it sits beside the
repository, each line once: every line is distinct, so no cache (embeddings, pinyin keys,
jieba) answers a line it has seen. Each measured pass uses a fresh engine and an empty
embedding cache; the example sentences' vectors are computed before timing (once per
rule pack). With similarity off, the `similar:` leaves are left out (their thresholds
unset) and everything else runs as usual. Prints figures; asserts nothing.
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
UTTERANCE_FILES = [
    "tests/data/probe_utterances.jsonl",
    "corpus/utterances_abuse_threat_impersonation.jsonl",
    "corpus/utterances_third_party_cash.jsonl",
    "bench/data/blind_utterances.jsonl",
    "bench/data/blind3_utterances.jsonl",
    "bench/data/blind4_utterances.jsonl",
]
CALL_FILES = ["tests/data/probe_calls.jsonl", "corpus/calls.jsonl"]


def _load(paths):
    records = []
    for path in paths:
        if path.exists():
            with open(path, encoding="utf-8") as handle:
                records.extend(json.loads(line) for line in handle if line.strip())
    return records


def _distinct(records, key):
    seen, kept = set(), []
    for record in records:
        k = key(record)
        if k not in seen:
            seen.add(k)
            kept.append(record)
    return kept


def _engine(similarity: bool):
    from monitor.detection.embedding import Embedder
    from monitor.detection.engine import Engine
    from monitor.detection.rules import load_rules

    pack = load_rules(REPO / "rules")
    engine = Engine(pack, Embedder(), similarity=similarity)
    for rule in engine.similar_rules:
        engine.example_vectors(rule)  # loads the model; once per rule pack, not per line
    return engine


def _pass(similarity: bool, utterances, calls, zone):
    from monitor.runs.scan import call_from_record, scan_lines

    engine = _engine(similarity)
    analyser = engine.pack.analyser
    utterance_lines = [json.dumps(r, ensure_ascii=False) for r in utterances]
    call_lines = [json.dumps(r, ensure_ascii=False) for r in calls]

    # Wall time, and this process's CPU time: on a machine other work shares, the CPU
    # time is what one core of its own would take.
    t0, c0 = time.perf_counter(), time.process_time()
    out = list(scan_lines(engine, utterance_lines, zone))
    utterance_seconds, utterance_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    list(scan_lines(engine, call_lines, zone))
    call_seconds, call_cpu = time.perf_counter() - t0, time.process_time() - c0
    turns = sum(len(r["turns"]) for r in calls)
    label = "on" if similarity else "off"
    print(f"similarity {label}:")
    print(f"  utterances: {len(utterance_lines)} distinct in {utterance_seconds:.2f} s = "
          f"{len(utterance_lines) / utterance_seconds:,.0f} utterances/s; {utterance_cpu:.2f} s CPU = "
          f"{len(utterance_lines) / utterance_cpu:,.0f} utterances per CPU second "
          f"({sum(1 for o in out if o.get('categories'))} flagged)")
    print(f"  calls: {len(call_lines)} ({turns} turns) in {call_seconds:.2f} s = {len(call_lines) / call_seconds:,.0f} calls/s"
          f" ({turns / call_seconds:,.0f} turns/s); {turns / call_cpu:,.0f} turns per CPU second")
    print(f"  turns that reached the embedding: {engine.stats['embedded']} of {engine.stats['turns']} "
          f"({engine.stats['embedded'] / max(1, engine.stats['turns']):.1%}); model runs {engine.embedder.computed}")

    # Where the time of an utterance goes: the utterances again with a fresh engine (and
    # an empty embedding cache), the stages wrapped in timers. Tokens are cut lazily,
    # only for turns whose matchers need them.
    engine = _engine(similarity)
    analyser = engine.pack.analyser
    spent = {"analyse": 0.0, "tokens": 0.0, "signals": 0.0, "similarity": 0.0}

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
    engine.embedder.embed = timed("similarity", engine.embedder.embed)
    parsed = [call_from_record(json.loads(line), zone) for line in utterance_lines]
    start = time.perf_counter()
    for call in parsed:
        engine.scan(call)
    total = time.perf_counter() - start
    stages = [
        ("normalisation and pinyin keys", spent["analyse"]),
        ("tokenisation (jieba, when a matcher needs it)", spent["tokens"]),
        ("matchers (screen, lexicons, regexes, guards)", spent["signals"] - spent["tokens"] - spent["similarity"]),
        ("similarity (embedding the anchored turns)", spent["similarity"]),
        # the turns are analysed before their signals, outside the signals' timer
        ("durable_rules (facts, rules, actions)", total - spent["signals"] - spent["analyse"]),
    ]
    print(f"  time per utterance (instrumented run, {len(parsed) / total:,.0f} utterances/s):")
    for name, seconds in stages:
        print(f"    {name:46} {seconds / len(parsed) * 1e6:8.1f} µs  {seconds / total:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--similarity", choices=["on", "off", "both"], default="both")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the embedding model on one thread too
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    shared = REPO.parent / "shared" / "devset"
    utterances = _distinct(_load([REPO / p for p in UTTERANCE_FILES] + [shared / "utterances.jsonl"]),
                           lambda r: r.get("text"))
    calls = _distinct(_load([REPO / p for p in CALL_FILES] + [shared / "calls.jsonl"]),
                      lambda r: tuple(t.get("text") for t in r["turns"]))
    zone = ZoneInfo("Asia/Shanghai")

    started = time.perf_counter()
    from monitor.detection.examples import load_engine
    from monitor.models import Call, Turn

    engine = load_engine(REPO / "rules")
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, pinned to one core")
    print(f"rules: {len(engine.pack.rules)} ({engine.pack.version}), loaded and examples checked in "
          f"{time.perf_counter() - started:.2f} s")
    # Warm what every pass shares and a running service has warm (jieba's dictionary,
    # OpenCC), on a line that is not measured.
    engine.scan(Call(id="warm", turns=(Turn("collector", "您好，这里是还款提醒"),)))
    for similarity in ([True, False] if args.similarity == "both" else [args.similarity == "on"]):
        _pass(similarity, utterances, calls, zone)


if __name__ == "__main__":
    main()
