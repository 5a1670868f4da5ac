#!/usr/bin/env bash
# Create .venv/ in the repository root with the monitor and everything it needs.
# Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned to the CPU build: anything that depends on torch (openai-whisper)
# would otherwise pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e '.[all,test]' -c constraints.txt
# The speaker encoder for diarization, without its stale metadata's dependencies
# (webrtcvad-wheels, librosa, torch and scipy above provide what it imports).
.venv/bin/python -m pip install --quiet --no-deps Resemblyzer==0.1.4
echo "set-up done: .venv/bin/monitor is ready"
