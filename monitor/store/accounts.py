"""Staff accounts, API tokens, uploads waiting for analysis (with the debtor's receipt)
and the reviewer a call is assigned to."""

from __future__ import annotations

from monitor.audit import Action
from monitor.store.database import Database, StoreError, now


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

    def uploads(self, origin: str | None = None, submitted_by: str | None = None, limit: int = 200) -> list[dict]:
        where, params = [], []
        if origin:
            where.append("origin = ?")
            params.append(origin)
        if submitted_by:
            where.append("submitted_by = ?")
            params.append(submitted_by)
        sql = "SELECT * FROM uploads" + (" WHERE " + " AND ".join(where) if where else "")
        return list(self.db.query(sql + " ORDER BY created_at DESC, rowid DESC LIMIT ?", [*params, limit]))

    def pending_upload_count(self) -> int:
        """Uploads queued or being processed."""
        return self.db.execute("SELECT count(*) FROM uploads WHERE status IN ('queued', 'processing')").fetchone()[0]

    def claim_queued_uploads(self) -> list[dict]:
        """Every queued upload, oldest first, now marked ``processing``."""
        with self._write():
            rows = list(self.db.query("SELECT * FROM uploads WHERE status = 'queued' ORDER BY created_at, rowid"))
            for row in rows:
                self.db["uploads"].update(row["id"], {"status": "processing", "updated_at": now()})
                row["status"] = "processing"
            return rows

    def requeue_interrupted_uploads(self) -> int:
        """Uploads left ``processing`` by a server that stopped: queue them again."""
        with self._write():
            cursor = self.db.execute(
                "UPDATE uploads SET status = 'queued', updated_at = ? WHERE status = 'processing'", [now()]
            )
            return cursor.rowcount

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

    def call_id_for(self, sha256: str) -> str | None:
        row = self.db.execute("SELECT id FROM calls WHERE sha256 = ?", [sha256]).fetchone()
        return row[0] if row else None

