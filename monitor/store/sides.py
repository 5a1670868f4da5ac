"""Which side of a stereo call is in its turns (``calls.debtor_side``), and putting the
debtor's turns in once they are transcribed."""

from __future__ import annotations

from monitor.audit import Action
from monitor.models import Call
from monitor.store.database import Database, StoreError, now

NOT_TRANSCRIBED = "not transcribed"


class SideRecords(Database):
    def save_transcript_sides(self, call: Call, origin: str = "batch", extra: dict | None = None,
                              debtor_side: str | None = None, collector_channel: str | None = None) -> str:
        """``save_transcript`` and the debtor side's state, in one transaction (a run
        killed in between must not leave a collector-only call looking complete)."""
        with self._write():
            existing = self.db.execute("SELECT id, status FROM calls WHERE sha256 = ?", [call.sha256]).fetchone()
            call_id = self.save_transcript(call, origin=origin, extra=extra)
            if not (existing and existing[1] in ("transcribed", "done")):
                self.db["calls"].update(call_id, {"debtor_side": debtor_side,
                                                  "collector_channel": collector_channel if debtor_side else None})
            return call_id

    def debtor_side(self, call_id: str) -> str | None:
        row = self.db.execute("SELECT debtor_side FROM calls WHERE id = ?", [call_id]).fetchone()
        if row is None:
            raise StoreError(f"no call with id {call_id!r}")
        return row[0]

    def calls_missing_debtor_side(self, call_ids: list[str] | None = None, flagged_only: bool = False) -> list[str]:
        """Calls whose debtor channel was not transcribed (of ``call_ids``, if given);
        ``flagged_only``: only those with an active finding."""
        sql = "SELECT id FROM calls c WHERE debtor_side = ?"
        params: list = [NOT_TRANSCRIBED]
        if flagged_only:
            sql += " AND EXISTS (SELECT 1 FROM findings f WHERE f.call_id = c.id AND f.active = 1)"
        found = [r[0] for r in self.db.execute(sql + " ORDER BY id", params).fetchall()]
        if call_ids is not None:
            wanted = set(call_ids)
            found = [c for c in found if c in wanted]
        return found

    def replace_turns(self, call_id: str, call: Call, debtor_side: str | None) -> None:
        """Replace a stored call's turns with ``call``'s (both sides now) and set it back
        to ``transcribed`` so the rules run over it again. The recording must be the one
        stored (same SHA-256)."""
        with self._write():
            row = self.db.execute("SELECT sha256 FROM calls WHERE id = ?", [call_id]).fetchone()
            if row is None:
                raise StoreError(f"no call with id {call_id!r}")
            if call.sha256 and row[0] != call.sha256:
                raise StoreError(f"{call.source}: the recording changed since call {call_id} was stored (SHA-256 differs)")
            self.db["turns"].delete_where("call_id = ?", [call_id])
            self.db["turns"].insert_all(
                {"call_id": call_id, "idx": i, "speaker": t.speaker, "text": t.text, "start": t.start,
                 "end": t.end, "confidence": t.confidence}
                for i, t in enumerate(call.turns)
            )
            self.db["calls"].update(call_id, {"status": "transcribed", "debtor_side": debtor_side, "updated_at": now()})
            self._audit("system", Action.DEBTOR_SIDE_TRANSCRIBED, call_id, {"turns": len(call.turns)})

    def carry_reviews(self, call_id: str) -> int:
        """After the debtor's turns were put in, a collector turn has a new index and so
        its finding a new id: a reviewer's decisions on the old finding (now inactive)
        move along to the new one when it is the same words at the same time, by the
        same rule. Returns how many decisions were carried; the old rows stay."""
        carried = 0
        with self._write():
            pairs = self.db.execute(
                "SELECT old.id, new.id FROM findings old JOIN findings new ON new.call_id = old.call_id"
                " AND new.rule = old.rule AND new.evidence = old.evidence AND new.start IS old.start"
                " AND new.\"end\" IS old.\"end\" AND new.id != old.id"
                " WHERE old.call_id = ? AND old.active = 0 AND new.active = 1",
                [call_id],
            ).fetchall()
            for old_id, new_id in pairs:
                if self.db.execute("SELECT 1 FROM reviews WHERE finding_id = ?", [new_id]).fetchone():
                    continue  # already decided on, or carried before
                for review in self.db.query("SELECT * FROM reviews WHERE finding_id = ? ORDER BY id", [old_id]):
                    self.db["reviews"].insert({**{k: v for k, v in review.items() if k != "id"}, "finding_id": new_id})
                    carried += 1
                    self._audit("system", Action(f"finding.{review['decision']}"), new_id,
                                {"note": review["note"], "carried_from": old_id, "reviewer": review["reviewer"]})
        return carried
