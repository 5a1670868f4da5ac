"""Speech: from a recording file to timed turns by speaker.

The only home of PyAV (``audio``), Whisper and torch (``transcribe``, ``model``).

    audio.py       decode any recording to 16 kHz float arrays, split stereo channels
    model.py       the packaged Whisper base model: assemble, verify, convert to .pt
    transcribe.py  the Transcriber protocol, the two Whisper engines, turns from segments
"""
