#!/usr/bin/env bash
# Set up, then run the main job on the embedded defaults: scan the bundled example
# transcripts with the bundled rules.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/monitor rules check
.venv/bin/monitor scan examples/transcripts.jsonl
