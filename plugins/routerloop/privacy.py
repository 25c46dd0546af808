"""Privacy: the key that pseudonymizes ids before they leave raw, and retention of personal data in raw.

Pseudonymization. Staging replaces customer and actor ids by HMAC-SHA256(key, id) in hex (the dbt
macro `pseudonymize`, macros/privacy.sql). PostgreSQL computes it with its built-in sha256() and the
standard HMAC construction, sha256(key ^ opad || sha256(key ^ ipad || message)), because pgcrypto is
not available everywhere routerloop runs (the embedded PostgreSQL 18 ships without it). The two padded
keys reach dbt's sessions as the settings routerloop.hmac_ipad / routerloop.hmac_opad in PGOPTIONS
(libpq reads it at connect time), never in SQL text: compiled SQL and dbt's log are written to disk.
`pseudonymize()` below is the same function in Python (a test holds them equal).

The key is ROUTERLOOP_HMAC_KEY (Settings.hmac_key). Outside production mode a missing key is generated
once into <state_dir>/hmac.key (mode 0600, never committed); in production mode a missing key is an
error when the settings are read.

Retention. `retention()` nulls the personal fields of the contract (contract.Field.personal) in raw
rows landed in partitions older than Settings.retention_days, removes them from the rows' `_raw`
documents, and empties the bytes of quarantined lines of those streams; it returns the counts.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime, timedelta

from routerloop import contract
from routerloop.config import settings

KEY_FILE = "hmac.key"
# PostgreSQL settings carrying the padded keys (routerloop.* is a custom-setting prefix: any session may
# set it, and only dbt's sessions get it).
IPAD_SETTING = "routerloop.hmac_ipad"
OPAD_SETTING = "routerloop.hmac_opad"
_BLOCK = 64  # SHA-256 block size in bytes


class MissingKeyError(RuntimeError):
    """No pseudonymization key where one is required."""


def hmac_key() -> bytes:
    """The pseudonymization key: the setting, else (outside production) the generated local key."""
    s = settings()
    if s.hmac_key:
        return s.hmac_key.encode()
    if s.production:  # settings() already refuses this; kept for Settings built by hand
        raise MissingKeyError("production mode needs ROUTERLOOP_HMAC_KEY")
    path = s.state_dir / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process generated it first
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip().encode()


def hmac_pads(key: bytes) -> tuple[str, str]:
    """The inner and outer padded keys of HMAC-SHA256 (RFC 2104), in hex."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key).hex(), bytes(b ^ 0x5C for b in key).hex()


def pseudonymize(value: str, key: bytes | None = None) -> str:
    """HMAC-SHA256 of `value` in hex: what staging stores instead of the id."""
    return hmac.new(key if key is not None else hmac_key(), value.encode(), hashlib.sha256).hexdigest()


def key_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """PGOPTIONS for dbt's sessions: the caller's options plus the padded keys (any earlier ones replaced)."""
    environ = os.environ if environ is None else environ
    tokens, kept = environ.get("PGOPTIONS", "").split(), []
    while tokens:
        token = tokens.pop(0)
        if token == "-c" and tokens and tokens[0].startswith("routerloop.hmac_"):
            tokens.pop(0)
        elif not token.startswith("-crouterloop.hmac_"):
            kept.append(token)
    ipad, opad = hmac_pads(hmac_key())
    options = " ".join([*kept, "-c", f"{IPAD_SETTING}={ipad}", "-c", f"{OPAD_SETTING}={opad}"])
    return {"PGOPTIONS": options}


# --------------------------------------------------------------------------- retention


def personal_fields() -> dict[str, list[contract.Field]]:
    """Stream -> its personal fields, as the contract marks them."""
    found = {s.name: [f for f in s.fields if f.personal] for s in contract.STREAMS.values()}
    return {name: fields for name, fields in found.items() if fields}


def retention(conn, now: datetime | None = None, days: int | None = None) -> dict:
    """Null personal data in raw older than `days` (default: Settings.retention_days); return the counts.

    A row's age is that of its landing partition (`_partition_hour`, the hour it was written), so whole
    partitions are visited. Idempotent: a second run finds nothing left to null.
    """
    days = settings().retention_days if days is None else days
    if days < 0:
        raise ValueError(f"retention days must be >= 0, got {days}")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    counts: dict[str, dict[str, int]] = {}
    with conn.transaction():
        for stream, fields in personal_fields().items():
            if conn.execute("select to_regclass(%s) is null", (f"raw.{stream}",)).fetchone()[0]:
                continue
            keys = [f.name for f in fields]
            columns = [f.column for f in fields]
            counted = conn.execute(
                "select " + ", ".join(f"count(*) filter (where {c} is not null)" for c in columns)
                + ", count(*) filter (where _raw ?| %s::text[])"
                + f" from raw.{stream} where _partition_hour < %s",
                (keys, cutoff),
            ).fetchone()
            conn.execute(
                f"update raw.{stream} set " + ", ".join(f"{c} = null" for c in columns)
                + ", _raw = _raw - %s::text[]"
                + " where _partition_hour < %s and (_raw ?| %s::text[] or "
                + " or ".join(f"{c} is not null" for c in columns) + ")",
                (keys, cutoff, keys),
            )
            counts[f"raw.{stream}"] = {**dict(zip(columns, counted[:-1], strict=True)), "_raw": counted[-1]}
        emptied = conn.execute(
            "update raw.quarantine set raw_bytes = ''::bytea"
            " where stream = any(%s) and quarantined_at < %s and length(raw_bytes) > 0",
            (list(personal_fields()), cutoff),
        ).rowcount
        counts["raw.quarantine"] = {"raw_bytes": emptied}
    return {"cutoff": cutoff.isoformat(), "days": days, "nulled": counts}
