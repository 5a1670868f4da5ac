"""Executors: threads per worker follow the worker count, tasks added while results are
read (the debtor channel after the collector's) come first, a broken file is a result,
and the two halves of a stereo call merge into the turns of a both-channel run."""

from __future__ import annotations

import multiprocessing

import pytest

from monitor.runs import collector_first
from monitor.runs.executor import InlineExecutor, LocalExecutor, peak_rss_mb, threads_per_worker
from monitor.runs.pipeline import AsrOptions, merged_call, transcribe_part

from .conftest import REPO, close

SAMPLE = str(REPO / "sample_audio" / "abuse_threat.wav")


def test_threads_per_worker_share_the_cores_out_without_oversubscribing():
    assert threads_per_worker(1, cores=2) == 2
    assert threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(3, cores=2) == 1
    assert threads_per_worker(4, cores=16) == 4
    assert LocalExecutor(2, AsrOptions()).options.cpu_threads == threads_per_worker(2)
    assert LocalExecutor(2, AsrOptions(cpu_threads=3)).options.cpu_threads == 3  # asked for: kept


def _report_peak(results) -> None:
    results.put(peak_rss_mb())


def test_a_spawned_worker_reports_its_own_peak_memory_not_its_parents():
    ballast = b"\x01" * (400 << 20)  # 400 MB touched in this process before the spawn
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_report_peak, args=(results,))
    child.start()
    child_peak = results.get(timeout=60)
    child.join()
    assert len(ballast) and 0 < child_peak < peak_rss_mb() - 300


def test_an_inline_session_runs_urgent_tasks_first_and_a_missing_file_is_a_result(tmp_path):
    with InlineExecutor(AsrOptions()).session() as session:
        for name in ("a", "b"):
            session.submit(str(tmp_path / f"{name}.wav"), "collector")
        session.submit(str(tmp_path / "c.wav"), "debtor", urgent=True)
        outcomes = list(session.results())
    assert [(o.path.rsplit("/", 1)[-1], o.side) for o in outcomes] == [("c.wav", "debtor"), ("a.wav", "collector"),
                                                                        ("b.wav", "collector")]
    assert all("file not found" in o.error and o.path in o.error for o in outcomes)


@pytest.mark.slow
def test_a_pool_takes_tasks_added_while_reading_and_the_halves_merge_into_the_both_channel_turns(tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio", encoding="utf-8")
    pool = LocalExecutor(2, AsrOptions())
    outcomes = []
    with pool.session() as session:
        session.submit(SAMPLE, "collector")
        session.submit(str(broken), "collector")
        for outcome in session.results():
            outcomes.append(outcome)
            if outcome.side == "collector" and outcome.error is None:
                session.submit(outcome.path, "debtor", urgent=True)
    by_task = {(o.path, o.side): o for o in outcomes}
    assert len(outcomes) == 3 and "broken.wav: not an audio file" in by_task[str(broken), "collector"].error
    collector, debtor = by_task[SAMPLE, "collector"].heard, by_task[SAMPLE, "debtor"].heard
    assert {s for s, _ in collector.segments} == {"collector"} and {s for s, _ in debtor.segments} == {"debtor"}
    merged = merged_call(collector.call, collector_first.merge_halves(collector.segments, debtor.segments),
                         SAMPLE, pool.options)
    both = transcribe_part(SAMPLE, pool.options).call  # the same threads as a pool worker
    assert close(merged.turns, both.turns) and close(merged.signals, both.signals)
    # Each worker reported its own peak memory (not its parent's): the base model stays under 1 GB (about 440 MB measured).
    assert pool.peak_rss_mb and all(0 < mb < 1000 for mb in pool.peak_rss_mb.values())
