"""Staff accounts, API tokens, uploads waiting for analysis (with the debtor's receipt)
and the reviewer a call is assigned to."""

from __future__ import annotations

from monitor.audit import Action
from monitor.store.database import Database, StoreError, now
from monitor.store.schema import LATEST_DECISION as LATEST_DECISION_OF_F


class WebRecords(Database):

    def add_user(self, username: str, password_hash: str, role: str) -> None:
        with self._write():
            if self.user(username) is not None:
                raise StoreError(f"user {username!r} already exists")
            self.db["users"].insert(
                {"username": username, "password_hash": password_hash, "role": role, "active": 1, "created_at": now()}
            )

    def set_password(self, username: str, password_hash: str) -> None:
        with self._write():
            if self.user(username) is None:
                raise StoreError(f"no user {username!r}")
            self.db["users"].update(username, {"password_hash": password_hash})

    def set_user_active(self, username: str, active: bool) -> None:
        """Activate or deactivate an account; deactivating ends its sessions."""
        with self._write():
            if self.user(username) is None:
                raise StoreError(f"no user {username!r}")
            self.db["users"].update(username, {"active": int(bool(active))})
            if not active:
                self._revoke_sessions(username)

    def set_role(self, username: str, role: str) -> None:
        """Change an account's role; its sessions end (the next request logs in again)."""
        with self._write():
            if self.user(username) is None:
                raise StoreError(f"no user {username!r}")
            self.db["users"].update(username, {"role": role})
            self._revoke_sessions(username)

    # -- server-side sessions: the cookie only names one; revoking it here ends it -------

    def open_session(self, session_hash: str, username: str, forget_before: str | None = None) -> None:
        """A new session; sessions opened before ``forget_before`` (expired) are deleted."""
        with self._write():
            if forget_before:
                self.db.execute("DELETE FROM sessions WHERE created_at < ?", [forget_before])
            self.db["sessions"].insert(
                {"session_hash": session_hash, "username": username, "created_at": now(), "revoked_at": None}
            )

    def session_user(self, session_hash: str, not_before: str) -> dict | None:
        """The active user of an unrevoked session opened at or after ``not_before``."""
        rows = list(self.db.query(
            "SELECT u.* FROM sessions s JOIN users u ON u.username = s.username"
            " WHERE s.session_hash = ? AND s.revoked_at IS NULL AND u.active = 1 AND s.created_at >= ?",
            [session_hash, not_before],
        ))
        return rows[0] if rows else None

    def revoke_session(self, session_hash: str) -> None:
        with self._write():
            self.db.execute("UPDATE sessions SET revoked_at = ? WHERE session_hash = ? AND revoked_at IS NULL",
                            [now(), session_hash])

    def revoke_sessions(self, username: str, keep: str | None = None) -> int:
        """End every open session of ``username`` (but ``keep``, a session hash)."""
        with self._write():
            return self._revoke_sessions(username, keep)

    def _revoke_sessions(self, username: str, keep: str | None = None) -> int:
        return self.db.execute(
            "UPDATE sessions SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL AND session_hash != ?",
            [now(), username, keep or ""],
        ).rowcount

    def open_sessions(self, username: str) -> int:
        return self.db.execute("SELECT count(*) FROM sessions WHERE username = ? AND revoked_at IS NULL",
                               [username]).fetchone()[0]

    # -- API tokens ----------------------------------------------------------------------

    def api_tokens(self, username: str | None = None) -> list[dict]:
        """Tokens (never the token itself: its hash, whose first 12 characters name it)."""
        sql = "SELECT token_hash, username, label, created_at, last_used_at, revoked FROM api_tokens"
        params = []
        if username:
            sql += " WHERE username = ?"
            params.append(username)
        return list(self.db.query(sql + " ORDER BY created_at DESC, rowid DESC", params))

    def revoke_token(self, token_prefix: str, username: str | None = None) -> dict | None:
        """Revoke the token whose hash starts with ``token_prefix`` (12+ characters),
        only among ``username``'s when given; returns it, or None."""
        if len(token_prefix) < 12:
            return None
        with self._write():
            where, params = ["token_hash LIKE ?"], [token_prefix + "%"]
            if username:
                where.append("username = ?")
                params.append(username)
            rows = list(self.db.query(f"SELECT * FROM api_tokens WHERE {' AND '.join(where)}", params))
            if len(rows) != 1:
                return None
            self.db["api_tokens"].update(rows[0]["token_hash"], {"revoked": 1})
            return rows[0]

    def user(self, username: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM users WHERE username = ?", [username]))
        return rows[0] if rows else None

    def users(self) -> list[dict]:
        return list(self.db.query("SELECT username, role, active, created_at FROM users ORDER BY username"))

    def add_api_token(self, token_hash: str, username: str, label: str = "") -> None:
        with self._write():
            self.db["api_tokens"].insert(
                {"token_hash": token_hash, "username": username, "label": label, "created_at": now(), "revoked": 0}
            )

    def user_for_token(self, token_hash: str) -> dict | None:
        """The active user an unrevoked API token belongs to (and note its use)."""
        rows = list(self.db.query(
            "SELECT u.* FROM api_tokens t JOIN users u ON u.username = t.username"
            " WHERE t.token_hash = ? AND t.revoked = 0 AND u.active = 1",
            [token_hash],
        ))
        if not rows:
            return None
        with self._write():
            self.db["api_tokens"].update(token_hash, {"last_used_at": now()})
        return rows[0]

    def add_upload(self, row: dict) -> None:
        with self._write():
            self.db["uploads"].insert({**row, "created_at": now(), "updated_at": now()})

    def update_upload(self, upload_id: str, **fields) -> None:
        with self._write():
            self.db["uploads"].update(upload_id, {**fields, "updated_at": now()})

    def upload(self, upload_id: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM uploads WHERE id = ?", [upload_id]))
        return rows[0] if rows else None

    def upload_by_receipt(self, receipt_hash: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM uploads WHERE receipt_hash = ?", [receipt_hash]))
        return rows[0] if rows else None

    @staticmethod
    def _upload_filter(origin, submitted_by, call_id) -> tuple[str, list]:
        where, params = [], []
        for column, value in (("origin", origin), ("submitted_by", submitted_by), ("call_id", call_id)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        return (" WHERE " + " AND ".join(where) if where else ""), params

    def uploads(self, origin: str | None = None, submitted_by: str | None = None, limit: int = 200,
                offset: int = 0, call_id: str | None = None) -> list[dict]:
        """Uploads, newest first, one page (``limit`` from ``offset``)."""
        where, params = self._upload_filter(origin, submitted_by, call_id)
        return list(self.db.query(f"SELECT * FROM uploads{where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                                  [*params, limit, max(0, offset)]))

    def upload_count(self, origin: str | None = None, submitted_by: str | None = None, call_id: str | None = None) -> int:
        where, params = self._upload_filter(origin, submitted_by, call_id)
        return self.db.execute(f"SELECT count(*) FROM uploads{where}", params).fetchone()[0]

    def pending_upload_count(self) -> int:
        """Uploads queued or being processed."""
        return self.db.execute("SELECT count(*) FROM uploads WHERE status IN ('queued', 'processing')").fetchone()[0]

    def claim_queued_uploads(self) -> list[dict]:
        """Every queued upload, oldest first, now marked ``processing``."""
        with self._write():
            rows = list(self.db.query("SELECT * FROM uploads WHERE status = 'queued' ORDER BY created_at, rowid"))
            for row in rows:
                attempts = (row.get("attempts") or 0) + 1
                self.db["uploads"].update(row["id"], {"status": "processing", "attempts": attempts, "updated_at": now()})
                row["status"], row["attempts"] = "processing", attempts
            return rows

    def requeue_interrupted_uploads(self, max_attempts: int = 2) -> int:
        """Uploads left ``processing`` by a server that stopped: queue them again, unless
        they were already taken up ``max_attempts`` times (the same upload stopping the
        worker twice would otherwise do so on every start): those end failed."""
        with self._write():
            self.db.execute(
                "UPDATE uploads SET status = 'failed', updated_at = ?, error = ? WHERE status = 'processing' AND attempts >= ?",
                [now(), f"分析中断了 {max_attempts} 次，不再自动重试（analysis interrupted {max_attempts} times; not retried)",
                 max_attempts],
            )
            cursor = self.db.execute(
                "UPDATE uploads SET status = 'queued', updated_at = ? WHERE status = 'processing'", [now()]
            )
            return cursor.rowcount

    def assign_many(self, call_ids: list[str], reviewer: str | None, assigned_by: str) -> int:
        with self._write():
            for call_id in call_ids:
                self.assign(call_id, reviewer, assigned_by)
        return len(call_ids)

    def assign(self, call_id: str, reviewer: str | None, assigned_by: str) -> None:
        """Assign a call to a reviewer (None: unassign); the change is audited."""
        with self._write():
            if self.call_row(call_id) is None:
                raise StoreError(f"no call with id {call_id!r}")
            if reviewer:
                self.db["assignments"].upsert(
                    {"call_id": call_id, "reviewer": reviewer, "assigned_by": assigned_by, "assigned_at": now()},
                    pk="call_id",
                )
            else:
                self.db["assignments"].delete_where("call_id = ?", [call_id])
            self._audit(assigned_by, Action.CALL_ASSIGNED, call_id, {"reviewer": reviewer})

    def assignment(self, call_id: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM assignments WHERE call_id = ?", [call_id]))
        return rows[0] if rows else None

    def reviews(self, call_id: str) -> list[dict]:
        """Every decision on the findings of one call, oldest first."""
        return list(self.db.query(
            "SELECT r.* FROM reviews r JOIN findings f ON f.id = r.finding_id WHERE f.call_id = ? ORDER BY r.id",
            [call_id],
        ))

    def copy_call(self, call_id: str, target: Database, as_call: dict) -> str:
        """Copy one call into another store as a record of its own: the call row with
        ``as_call``'s columns instead (id, times, numbers …; staff metadata not named
        there is cleared), its turns, its active findings under the new id, and each
        finding's latest decision without who made it or their note. How a debtor's
        documents are built from a recording staff stored first; returns the new id."""
        row = self.call_row(call_id)
        if row is None:
            raise StoreError(f"no call with id {call_id!r}")
        new_id = as_call.get("id") or call_id
        copied = {**row, "collector_id": None, "debtor_id": None, "caller_number": None, "callee_number": None,
                  "metadata": None, "started_at": None, "started_utc": None, **as_call, "id": new_id}
        decisions = {f["id"]: f for f in self.db.query(
            f"SELECT f.*, {LATEST_DECISION_OF_F} AS decision, (SELECT decided_at FROM reviews r WHERE r.finding_id = f.id"
            " ORDER BY r.id DESC LIMIT 1) AS decided_at FROM findings f WHERE f.call_id = ? AND f.active = 1", [call_id])}
        with target._write():
            target.db["calls"].insert(copied)
            target.db["turns"].insert_all(
                {**t, "call_id": new_id} for t in self.db.query("SELECT * FROM turns WHERE call_id = ? ORDER BY idx", [call_id]))
            for old_id, finding in decisions.items():
                decision, decided_at = finding.pop("decision"), finding.pop("decided_at")
                finding_id = new_id + old_id[len(call_id):]
                target.db["findings"].insert({**finding, "id": finding_id, "call_id": new_id})
                if decision:
                    target.db["reviews"].insert({"finding_id": finding_id, "decision": decision, "note": "",
                                                 "reviewer": "审核人员", "decided_at": decided_at})
        return new_id

    def call_id_for(self, sha256: str) -> str | None:
        row = self.db.execute("SELECT id FROM calls WHERE sha256 = ?", [sha256]).fetchone()
        return row[0] if row else None

