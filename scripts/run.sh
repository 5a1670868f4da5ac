#!/usr/bin/env bash
# Set up, then run the main job on the embedded defaults: analyse sample_audio/ into the
# SQLite database (./monitor.db) with local workers and the offline Whisper model, and
# serve the review app on http://127.0.0.1:8000/ (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
monitor=.venv/bin/monitor
$monitor rules check
# Idempotent: a second start transcribes nothing. Exit status 1 only means a recording
# failed, which the summary names; the app is served all the same.
$monitor batch sample_audio --workers 2 || echo "(some recordings failed; see the summary above)"
password_file=instance/first-admin-password
if [ -z "$($monitor users list)" ]; then
  mkdir -p instance
  ( umask 077; .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(12))" > "$password_file" )
  $monitor users add admin --role admin --password-stdin < "$password_file"
fi
echo
echo "Log in at http://127.0.0.1:8000/login as 'admin' with the password in $password_file"
echo "(add reviewers with: .venv/bin/monitor users add NAME --role reviewer)."
echo "Debtors submit recordings at http://127.0.0.1:8000/submit (no account)."
exec $monitor serve --host 127.0.0.1 --port 8000
