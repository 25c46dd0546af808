"""Conflicting duplicates: a line whose key is known but whose content differs from the landed record.

A re-delivery repeats a record: the first line wins and the repeat counts as a duplicate. A line that
reuses a known key with other content is not a re-delivery but a conflict: it goes to the quarantine
as `conflicting_duplicate`, with its exact bytes and, in the message, the key and the landed record it
conflicts with (file, path, line); it counts as quarantined (toward the bad-line limit) and, apart,
as a conflict.

The same content means: every contract field equal as stored (timestamps as instants, numbers as
numbers, so `+01:00` against `Z` or `0.50` against `0.5` is the same) and the unknown extra fields
equal as JSON (key order and whitespace never matter). For the streams whose latest state wins, a
newer state has a newer `updatedAt` / `evaluatedAt`, which is part of the key: a new key, never a
conflict.

Only files with duplicates pay for the comparison, after the typed insert (a line's owner may be an
earlier line of the same file): it joins the staged lines whose key another line owns with the
owner's raw row, in the owners' day partitions only.
"""

from __future__ import annotations

from routerloop import contract
from routerloop.landing.copy_writer import STAGE_TABLE
from routerloop.landing.quarantine import QuarantineBuffer
from routerloop.landing.reading import LineReader
from routerloop.warehouse.raw import key_expression, key_fields, typed_expression

CONFLICT = "conflicting_duplicate"


_NOT_OWNED = "not (k._file_id = %(file_id)s and k._line_number = s._line_number)"


def _staged_with_keys(stream: contract.Stream) -> str:
    probe = " and ".join(f"k.{f.column} = {key_expression(stream.name, f, 's.record')}" for f in key_fields(stream))
    return f"from {STAGE_TABLE} as s join raw.{stream.name}_keys as k on {probe}"


def _conflicts_sql(stream_name: str) -> str:
    stream = contract.STREAMS[stream_name]
    staged = ", ".join(typed_expression(stream_name, f) for f in stream.fields)
    landed = ", ".join(f"r.{f.column}" for f in stream.fields)
    names = ", ".join(f"'{f.name}'" for f in stream.fields)
    key_text = " || ', ' || ".join(f"(s.record->>'{name}')" for name in stream.key)
    return f"""
select s._line_number, {key_text}, r._file_id, r._source_file, r._line_number
{_staged_with_keys(stream)}
join raw.{stream_name} as r
    on r._partition_hour = k._partition_hour and r._file_id = k._file_id and r._line_number = k._line_number
where r._partition_hour = any(%(owner_hours)s) and {_NOT_OWNED}
  and (row({staged}) is distinct from row({landed})
       or s.record - array[{names}] <> r._raw - array[{names}])
order by s._line_number
"""


def find(conn, stream: str, params: dict) -> dict[int, str]:
    """Line number -> conflict message, for the staged lines that conflict with the record owning their key."""
    owner_hours = [hour for (hour,) in conn.execute(
        f"select distinct k._partition_hour {_staged_with_keys(contract.STREAMS[stream])} where {_NOT_OWNED}",
        params)]
    if not owner_hours:
        return {}
    rows = conn.execute(_conflicts_sql(stream), {**params, "owner_hours": owner_hours}).fetchall()
    return {
        line_number: (f"key {key} is already landed with different content, as line {owner_line} of "
                      f"{owner_path} (file {owner_file}): a conflicting duplicate, not a re-delivery")
        for line_number, key, owner_file, owner_path, owner_line in rows
    }


def quarantine(reader: LineReader, buffer: QuarantineBuffer, messages: dict[int, str]) -> None:
    """Quarantine the conflicting lines with their exact bytes (read again: the staging table holds jsonb)."""
    line_number = 0
    for chunk in reader.batches():
        for line in chunk:
            line_number += 1
            if line_number in messages:
                buffer.add(line_number, line, (CONFLICT, messages[line_number]))
    if reader.tail and line_number + 1 in messages:
        buffer.add(line_number + 1, reader.tail, (CONFLICT, messages[line_number + 1]))
    buffer.flush()
