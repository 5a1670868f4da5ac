"""Speakers and conversation signals of stored calls: the diarized roles, the notes on
them, each turn's voice and signals, and a person's decision on who is the collector.

Kept beside the transcript (migration 0003_diar_signals) so a rescan sees the same
raised voices and overtalk the recording showed, and so the queue can filter on them.
"""

from __future__ import annotations

import json

from monitor.audit import Action
from monitor.models import Call, CallSignals, SpeakerRoles
from monitor.store.database import Database, StoreError, now


class SignalRecords(Database):
    def _save_speakers(self, call_id: str, call: Call) -> None:
        """Write the signal columns of a call and its turns (inside a write)."""
        collector = call.signals.side("collector") if call.signals is not None else None
        self.db["calls"].update(call_id, {
            "signals": json.dumps(call.signals.to_dict(), ensure_ascii=False) if call.signals else None,
            "roles": json.dumps(call.roles.to_dict(), ensure_ascii=False) if call.roles else None,
            "speaker_notes": json.dumps(list(call.notes), ensure_ascii=False) if call.notes else None,
            "overtalk_share": call.signals.overtalk_share if call.signals else None,
            "collector_talk_share": collector.talk_share if collector else None,
        })
        for i, turn in enumerate(call.turns):
            self.db.execute(
                "UPDATE turns SET speaker = ?, speaker_source = ?, voice = ?, loudness = ?, raised_voice = ?, overtalk = ?"
                " WHERE call_id = ? AND idx = ?",
                [turn.speaker, turn.speaker_source, turn.voice, turn.loudness, int(turn.raised_voice), turn.overtalk,
                 call_id, i],
            )

    @staticmethod
    def _speaker_fields(call_row: dict) -> dict:
        """Call fields from the stored signal columns (for ``Call(**...)``)."""
        return {
            "signals": CallSignals.from_dict(json.loads(call_row["signals"])) if call_row.get("signals") else None,
            "roles": SpeakerRoles.from_dict(json.loads(call_row["roles"])) if call_row.get("roles") else None,
            "notes": tuple(json.loads(call_row["speaker_notes"])) if call_row.get("speaker_notes") else (),
        }

    @staticmethod
    def _turn_fields(turn_row: dict) -> dict:
        return {
            "speaker_source": turn_row.get("speaker_source"), "voice": turn_row.get("voice"),
            "loudness": turn_row.get("loudness"), "raised_voice": bool(turn_row.get("raised_voice")),
            "overtalk": turn_row.get("overtalk"),
        }

    def save_speakers(self, call: Call, actor: str, action: Action, detail: dict | None = None) -> None:
        """Store a person's decision on the roles of a stored call (its turns' speakers,
        signals and roles), audited; the caller re-runs the rules afterwards."""
        with self._write():
            if self.db.execute("SELECT 1 FROM calls WHERE id = ?", [call.id]).fetchone() is None:
                raise StoreError(f"no call with id {call.id!r}")
            self._save_speakers(call.id, call)
            self.db["calls"].update(call.id, {"status": "transcribed", "updated_at": now()})
            self._audit(actor, action, call.id, {"collector_voice": call.roles.collector_voice if call.roles else None,
                                                 **(detail or {})})
