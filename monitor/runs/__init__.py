"""Runs: the ways calls go through the stages.

    metadata.py    what is known about a call (file name, sidecar, manifest, form)
    pipeline.py    one recording → findings, and analyse-and-store for every entry point
    executor.py    where transcription runs: in-process, a local pool, a Dask cluster
    batch.py       the nightly batch: discovery, idempotent resumable runs, rescan
    scan.py        the ``monitor scan`` contract: JSON Lines in, findings out
    evaluation.py  precision and recall per category on labelled sets; misses by kind
    calibration.py thresholds of `similar:` leaves from labelled sets, each held out
"""
