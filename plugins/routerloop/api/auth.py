"""Bearer tokens of the API: create, revoke, list, and authenticate a request's token.

A token is `rl_<token_id>_<secret>`: the id is public (it names the token in the audit trail and in
`routerloop token revoke`), the secret is 32 random bytes (base64url). api.tokens (migration "API
bearer tokens") stores the id, the role and the SHA-256 of the secret; the token itself is printed
once by `routerloop token create` and cannot be recovered.

Roles: router reads the weights; analyst reads the CSAT-bearing figures (weight changes with their
rationale, experiments, the metrics summary); admin reads everything, including /metrics. Each API role
reads the database as one PostgreSQL role of routerloop.warehouse.roles (DATABASE_ROLE).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

ROLES = ("router", "analyst", "admin")
# API role -> the kind of PostgreSQL role its requests read as (SET ROLE; routerloop.warehouse.roles).
# admin reads raw and audit for /metrics: the pipeline role, in read-only transactions.
DATABASE_ROLE = {"router": "router", "analyst": "analyst", "admin": "pipeline"}
TOKEN_PREFIX = "rl"
_SECRET_BYTES = 32
_TOKEN = re.compile(r"rl_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


class TokenError(ValueError):
    """A token command that cannot be carried out (unknown role or token)."""


@dataclass(frozen=True)
class Principal:
    """Who a request is: the token's id and its role."""

    token_id: str
    role: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(conn, role: str, note: str | None = None) -> tuple[str, str]:
    """Store a new token of `role`; return (token_id, token). The token is not stored and not shown again."""
    if role not in ROLES:
        raise TokenError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    conn.execute(
        "insert into api.tokens (token_id, role, secret_sha256, note) values (%s, %s, %s, %s)",
        (token_id, role, _digest(secret), note),
    )
    return token_id, f"{TOKEN_PREFIX}_{token_id}_{secret}"


def revoke(conn, token_id: str) -> bool:
    """Revoke a token by id (or by the whole token); False when it was revoked already."""
    match = _TOKEN.fullmatch(token_id)
    token_id = match.group(1) if match else token_id
    row = conn.execute("select revoked_at from api.tokens where token_id = %s", (token_id,)).fetchone()
    if row is None:
        raise TokenError(f"unknown token id {token_id!r}; see `routerloop token list`")
    if row[0] is not None:
        return False
    conn.execute(
        "update api.tokens set revoked_at = clock_timestamp(), revoked_by = session_user where token_id = %s",
        (token_id,),
    )
    return True


def list_tokens(conn) -> list[dict]:
    """Every token's id, role, note and dates (never a secret), oldest first."""
    cursor = conn.execute(
        "select token_id, role, note, created_by, created_at, revoked_by, revoked_at from api.tokens order by created_at"
    )
    names = [c.name for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def authenticate(conn, authorization: str | None) -> Principal | None:
    """The principal of an `Authorization: Bearer <token>` header; None when missing, malformed, unknown
    or revoked (the caller answers 401 without saying which)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    match = _TOKEN.fullmatch(token.strip()) if scheme.lower() == "bearer" else None
    if match is None:
        return None
    token_id, secret = match.groups()
    row = conn.execute(
        "select role, secret_sha256 from api.tokens where token_id = %s and revoked_at is null", (token_id,)
    ).fetchone()
    if row is None or not hmac.compare_digest(row[1], _digest(secret)):
        return None
    return Principal(token_id, row[0])
