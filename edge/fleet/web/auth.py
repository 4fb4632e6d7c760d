"""Desk users, passwords (scrypt), server-side sessions, CSRF tokens and the audit log.

Passwords: ``scrypt$N$r$p$salt_hex$hash_hex`` with hashlib.scrypt (N=2^14, r=8, p=1,
64-byte key), compared in constant time. Sessions: the cookie holds a random token;
the table keeps only its sha256, the user, a per-session CSRF token and an idle expiry
that each request pushes forward. Every login, failed login, logout, view and change
goes to ``audit`` with the user, role, object and remote address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from edge.errors import ConfigError

ROLES = ("fraud", "inspection", "admin")
_N, _R, _P = 1 << 14, 8, 1


def hash_password(password: str, salt: bytes | None = None) -> str:
    if len(password) < 8:
        raise ConfigError("a desk password needs at least 8 characters")
    salt = salt or secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=64,
                        maxmem=64 << 20)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${dk.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, want = stored.split("$")
        if scheme != "scrypt":
            return False
        dk = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                            p=int(p), dklen=len(want) // 2, maxmem=64 << 20)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(dk.hex(), want)


# a hash to compare against when the user does not exist (same cost, no user oracle)
_DUMMY = hash_password("not-a-real-password", b"\0" * 16)


def set_user(conn: Any, name: str, role: str, password: str) -> None:
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}")
    conn.execute("""INSERT INTO desk_users (name, role, pw_hash) VALUES (%s, %s, %s)
        ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, pw_hash = EXCLUDED.pw_hash,
        disabled = false""", (name, role, hash_password(password)))
    conn.execute("DELETE FROM desk_sessions WHERE user_name = %s", (name,))


@dataclass(slots=True, frozen=True)
class DeskSession:
    user: str
    role: str
    csrf: str
    token_hash: str


def _th(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login(conn: Any, name: str, password: str, idle_s: float) -> tuple[str, DeskSession] | None:
    """(cookie token, session) for good credentials, else None."""
    row = conn.execute("SELECT role, pw_hash, disabled FROM desk_users WHERE name = %s",
                       (name,)).fetchone()
    if row is None:
        verify_password(password, _DUMMY)
        return None
    role, pw_hash, disabled = row
    if disabled or not verify_password(password, pw_hash):
        return None
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    conn.execute("""INSERT INTO desk_sessions (token_hash, user_name, csrf, expires_at)
        VALUES (%s, %s, %s, %s)""", (_th(token), name, csrf,
                                     datetime.now(UTC) + timedelta(seconds=idle_s)))
    return token, DeskSession(name, role, csrf, _th(token))


def session(conn: Any, token: str | None, idle_s: float) -> DeskSession | None:
    """The live session for a cookie token (its idle expiry pushed forward), or None."""
    if not token or len(token) > 200:
        return None
    row = conn.execute("""UPDATE desk_sessions s SET last_seen = now(),
            expires_at = now() + make_interval(secs => %s)
        FROM desk_users u WHERE s.token_hash = %s AND s.expires_at > now()
            AND u.name = s.user_name AND NOT u.disabled
        RETURNING s.user_name, u.role, s.csrf""", (idle_s, _th(token))).fetchone()
    if row is None:
        return None
    return DeskSession(row[0], row[1], row[2], _th(token))


def logout(conn: Any, sess: DeskSession) -> None:
    conn.execute("DELETE FROM desk_sessions WHERE token_hash = %s", (sess.token_hash,))


def csrf_ok(sess: DeskSession, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(sess.csrf, str(sent))


def audit(conn: Any, user: str, role: str, action: str, obj: str = "",
          detail: dict[str, Any] | None = None, remote: str = "") -> None:
    conn.execute("""INSERT INTO audit (user_name, role, action, object, detail, remote)
        VALUES (%s, %s, %s, %s, %s, %s)""", (user, role, action, obj[:500],
                                             Jsonb(detail or {}), remote[:100]))
