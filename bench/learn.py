"""The risk model: training time from the shipped data, scoring time per turn, and how
far rules plus suspected lines cover held-out labelled sets.

    .venv/bin/python bench/learn.py [--held-out] [--extra FILE ...]

Times are wall clock and CPU time of this process (on a shared machine the wall clock
also counts other programs). Without options: trains once on everything shipped (the shipped model's recipe) and
times scoring on the shipped model. ``--held-out`` also trains once per shipped set
without it and measures on it (leave one set out), and measures the shipped model on
the shared dev set when it sits beside the repository (never trained on). ``--extra``
measures the shipped model on more labelled files. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitor.detection.examples import load_engine  # noqa: E402
from monitor.learning.data import SHIPPED_SETS, data_sha256, read_labelled, shipped_lines  # noqa: E402
from monitor.learning.measure import measure  # noqa: E402
from monitor.learning.model import SHIPPED_MODEL, load_model  # noqa: E402
from monitor.learning.training import train  # noqa: E402


def _turn_texts() -> list[str]:
    texts = []
    for name in SHIPPED_SETS:
        texts.extend(line.text for line in read_labelled(REPO / name))
    return texts


def scoring_speed(model, texts: list[str]) -> None:
    model.score(texts[:50])  # warm: jieba dictionary, pinyin cache
    for size, label in ((1, "one turn at a time"), (10, "10 turns (one call)"), (256, "256 turns (scan chunk)")):
        chosen = texts[: max(size * 40, 400)] if size > 1 else texts[:400]
        started, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(chosen), size):
            model.score(chosen[i:i + size])
        per_turn = (time.perf_counter() - started) / len(chosen) * 1e3
        cpu_per_turn = (time.process_time() - cpu) / len(chosen) * 1e3
        print(f"scoring, {label:24}: {per_turn:.3f} ms per turn wall, {cpu_per_turn:.3f} ms CPU ({len(chosen)} turns)")


def row(name: str, c) -> str:
    return (f"| {name} | {c.lines} | {c.rules_line_recall:.3f} | {c.line_coverage:.3f} | {c.pair_coverage:.3f} | "
            f"{c.suspect_recall:.3f} | {c.lawful_suspected_rate:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--held-out", action="store_true")
    parser.add_argument("--extra", nargs="*", default=[])
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs")
    engine = load_engine(REPO / "rules")
    lines = shipped_lines(engine.pack)
    started, cpu = time.perf_counter(), time.process_time()
    model, report = train(lines, engine)
    print(f"training from the shipped data ({len(lines)} lines): {time.perf_counter() - started:.1f} s "
          f"({time.process_time() - cpu:.1f} s CPU); out of fold: "
          f"lawful lines suspected {report.oof_lawful_rate:.3f}, violations covered {report.oof_coverage:.3f}")
    shipped = load_model(SHIPPED_MODEL)
    same = shipped.header.get("data_sha256") == data_sha256(lines)
    print(f"shipped model {shipped.version}: trained on the current shipped data: {'yes' if same else 'no, rebuild it'}")
    scoring_speed(shipped, _turn_texts())

    header = ("| held-out set | lines | rules: violating lines flagged | rules + suspected: lines covered | "
              "pairs covered | suspected recall on rule misses | lawful lines suspected |\n|---|---|---|---|---|---|---|")
    measured = []
    if args.held_out:
        for name in SHIPPED_SETS:
            held_model, _ = train(shipped_lines(engine.pack, exclude=[name]), engine)
            measured.append(row(f"{name} (trained without it)", measure(held_model, engine, read_labelled(REPO / name))))
            print(measured[-1], file=sys.stderr, flush=True)  # progress; the table follows
        devset = Path(os.environ.get("MONITOR_SHARED", REPO.parent / "shared")) / "devset"
        for name in ("utterances.jsonl", "calls.jsonl"):
            if (devset / name).exists():
                measured.append(row(f"dev set {name} (never trained on)", measure(shipped, engine, read_labelled(devset / name))))
    for name in args.extra:
        measured.append(row(f"{Path(name).name} (shipped model)", measure(shipped, engine, read_labelled(name))))
    if measured:
        print(header)
        print("\n".join(measured))


if __name__ == "__main__":
    main()
