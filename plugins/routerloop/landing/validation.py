"""Line validation: the contract of one stream as code, a fast msgspec path and the authoritative classifier.

Python validates each line with msgspec: a per-stream Struct derived from contract.STREAMS (types,
Literal enums, ranges, non-empty ids, timezone-aware timestamps, no unknown fields) decodes a valid
line in ~1 us. Whatever the fast path does not accept outright (a decode error, an unknown field, a
NUL escape, a missing id prefix, an offset PostgreSQL refuses, a zero that may be an underflow) goes
to a small pure-Python classifier, the authority, which names the reason (contract.REASONS, checked
in that order) or accepts the line. A msgspec `pattern` for id prefixes cost ~0.5-1 us per line;
str.startswith costs ~0.1 us.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from operator import attrgetter
from typing import Annotated, Literal

import msgspec

from routerloop import contract

_INT4_MIN, _INT4_MAX = -(2**31), 2**31 - 1
_MAX_UTC_OFFSET = timedelta(hours=16)  # PostgreSQL refuses offsets beyond +-15:59
_NUMERIC_MAX_WEIGHT_DIGITS = 131_072  # jsonb numbers: digits before the decimal point ...
_NUMERIC_MAX_SCALE = 16_383  # ... and after it
_TIMESTAMP = Annotated[datetime, msgspec.Meta(tz=True)]
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
# A zero numeric stores: a display scale (fraction digits minus the exponent) of at most 16383.
_PLAIN_ZERO = re.compile(rb"-?0+(?:\.0{0,1000})?(?:[eE][+-]?[0-9]{1,4})?")


def _is_id(field: contract.Field) -> bool:
    return field.kind == "string" and field.required and (bool(field.prefix) or field.name.endswith("Id"))


def _is_bounded(field: contract.Field, stream: contract.Stream) -> bool:
    """Ids and key strings: at most contract.MAX_ID_LENGTH characters (a key must fit an index row)."""
    return field.kind == "string" and (field.name.endswith("Id") or field.name in stream.key)


def _integer_bounds(field: contract.Field) -> tuple[int, int]:
    low = _INT4_MIN if field.minimum is None else max(_INT4_MIN, math.ceil(field.minimum))
    high = _INT4_MAX if field.maximum is None else min(_INT4_MAX, math.floor(field.maximum))
    return low, high


def _fast_type(field: contract.Field, stream: contract.Stream):
    """The msgspec type that accepts exactly the valid values of a field (null aside)."""
    kind = field.kind
    if kind == "string":
        longest = {"max_length": contract.MAX_ID_LENGTH} if _is_bounded(field, stream) else {}
        if field.prefix:  # the prefix itself is checked by Validator.accepts_decoded (faster than a pattern)
            return Annotated[str, msgspec.Meta(min_length=len(field.prefix) + 1, **longest)]
        shortest = {"min_length": 1} if _is_id(field) else {}
        return Annotated[str, msgspec.Meta(**shortest, **longest)] if shortest or longest else str
    if kind == "timestamp":
        return _TIMESTAMP
    if kind == "enum":
        return Literal[field.values]
    if kind == "number":
        bounds = {k: v for k, v in (("ge", field.minimum), ("le", field.maximum)) if v is not None}
        return Annotated[float, msgspec.Meta(**bounds)] if bounds else float
    if kind == "integer":
        low, high = _integer_bounds(field)
        return Annotated[int, msgspec.Meta(ge=low, le=high)]
    if kind == "boolean":
        return bool
    if kind == "string_array":
        return list[str]
    raise ValueError(f"unknown field kind {kind!r}")


class _NonDouble(float):
    """A JSON number that is not a finite, non-underflowing double (inf or a nonzero rounding to 0)."""

    literal: str  # for messages (shortened)
    full_literal: str


def _parse_float(literal: str) -> float:
    value = float(literal)
    if (math.isinf(value) or (value == 0.0 and not _PLAIN_ZERO.fullmatch(literal.encode()))
            or ((len(literal) > 30 or "e" in literal or "E" in literal) and not _numeric_storable(literal))):
        marked = _NonDouble(value)
        marked.literal = literal if len(literal) <= 40 else f"{literal[:20]}... ({len(literal):,} characters)"
        marked.full_literal = literal
        return marked
    return value


class _HugeInt(int):
    """An integer literal too long for Python's int(); far beyond any column."""

    literal: str  # for messages (shortened)
    full_literal: str


def _numeric_storable(literal: str) -> bool:
    """Whether PostgreSQL's numeric (jsonb numbers) holds the literal: at most 131072 digits before the
    decimal point and a display scale (digits after it, exponent applied, trailing zeros kept) of 16383."""
    try:
        decimal = Decimal(literal)
    except InvalidOperation:
        return False
    sign, digits, exponent = decimal.as_tuple()
    whole_digits = len(digits) + exponent if any(digits) else 0
    return whole_digits <= _NUMERIC_MAX_WEIGHT_DIGITS and -exponent <= _NUMERIC_MAX_SCALE


def _parse_int(literal: str) -> int:
    if len(literal) > 4000:  # Python refuses int() of more than 4300 digits
        marked = _HugeInt(0)
        marked.literal = f"{literal[:20]}... ({len(literal):,} digits)"
        marked.full_literal = literal
        return marked
    return int(literal)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _jsonb_cannot_store(number) -> bool:
    """True for a number jsonb (PostgreSQL numeric) refuses."""
    if not isinstance(number, _NonDouble | _HugeInt):
        return False
    return not _numeric_storable(number.full_literal)


def _walk(value, path: str = "") -> Iterator[tuple[str, object]]:
    """Every (path, scalar-or-key) in a decoded JSON value; keys come as their own strings."""
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            yield child, key
            yield from _walk(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    else:
        yield path, value


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


_EXPECTED = {
    "string": "a string",
    "timestamp": "a string (ISO 8601 timestamp)",
    "enum": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "string_array": "an array of strings",
}


def _type_ok(kind: str, value) -> bool:
    if kind in ("string", "timestamp", "enum"):
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string_array":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    raise ValueError(f"unknown field kind {kind!r}")


def _range_problem(field: contract.Field, value) -> str | None:
    name = field.name
    if isinstance(value, _NonDouble | _HugeInt):
        return f"{name} = {value.literal} cannot be stored as a number"
    if field.kind == "integer":
        low, high = _integer_bounds(field)
        if not low <= value <= high:
            return f"{name} = {value} lies outside [{low}, {high}]"
        return None
    try:
        float(value)
    except OverflowError:
        return f"{name} = {value} cannot be stored as double precision"
    if field.minimum is not None and value < field.minimum:
        return f"{name} = {value} is below its minimum {field.minimum:g}"
    if field.maximum is not None and value > field.maximum:
        return f"{name} = {value} is above its maximum {field.maximum:g}"
    return None


def _timestamp_problem(value: str) -> str | None:
    try:
        moment = msgspec.convert(value, _TIMESTAMP)
    except msgspec.ValidationError:
        return "is not an ISO 8601 timestamp with an offset (e.g. 2026-11-01T13:05:10.123Z)"
    if abs(moment.utcoffset()) >= _MAX_UTC_OFFSET:
        return "has an offset beyond +-15:59, which PostgreSQL cannot store"
    return None


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Validator:
    """The contract of one stream as code: a fast msgspec path and the authoritative classifier."""

    def __init__(self, stream: contract.Stream):
        self.stream = stream
        struct_fields = [
            (f.name, _fast_type(f, stream)) if f.required else (f.name, _fast_type(f, stream) | None, None)
            for f in stream.fields
        ]
        line_struct = msgspec.defstruct(
            f"{stream.name}_line", struct_fields, kw_only=True, forbid_unknown_fields=True
        )
        self.decode = msgspec.json.Decoder(line_struct).decode
        timestamps = [f.name for f in stream.fields if f.kind == "timestamp"]
        numbers = [f.name for f in stream.fields if f.kind == "number"]
        self._timestamps = attrgetter(*timestamps) if len(timestamps) > 1 else None
        self._timestamp = timestamps[0] if len(timestamps) == 1 else None
        self._numbers = [(name, re.compile(rb'"' + name.encode() + rb'"\s*:\s*(-?[0-9][0-9.eE+-]*)'))
                         for name in numbers]
        self._ids = [f for f in stream.fields if _is_id(f)]
        self._bounded = [f for f in stream.fields if _is_bounded(f, stream)]
        self._prefixes = [(f.name, f.prefix) for f in stream.fields if f.prefix]

    def accepts_decoded(self, record, line: bytes) -> bool:
        """After a successful fast decode: True when nothing needs the classifier's closer look."""
        if b"\\u0000" in line:
            return False
        for name, prefix in self._prefixes:
            value = getattr(record, name)
            if value is not None and not value.startswith(prefix):
                return False
        if self._timestamp is not None:
            moment = getattr(record, self._timestamp)
            if moment is not None and moment.tzinfo is not UTC and abs(moment.utcoffset()) >= _MAX_UTC_OFFSET:
                return False
        elif self._timestamps is not None:
            for moment in self._timestamps(record):
                if moment is not None and moment.tzinfo is not UTC and abs(moment.utcoffset()) >= _MAX_UTC_OFFSET:
                    return False
        for name, literal_re in self._numbers:
            if getattr(record, name) == 0.0:
                # msgspec rounds 1e-400 to 0.0; PostgreSQL refuses it: look at the literal itself.
                literals = literal_re.findall(line)
                if not literals or not _PLAIN_ZERO.fullmatch(literals[-1]):
                    return False
        return True

    def classify(self, line: bytes, last_without_newline: bool = False) -> tuple[str, str] | None:
        """(reason, message) for a line that breaks the contract, None for a valid line.

        Checks in contract.REASONS order; the first rule broken is the reason.
        """
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            if last_without_newline and exc.reason == "unexpected end of data" and exc.end == len(line):
                return "truncated_line", "the last line ends inside a UTF-8 character, without a newline"
            return "not_utf8", f"byte 0x{line[exc.start]:02x} at offset {exc.start} is not valid UTF-8"
        try:
            record = json.loads(
                text, parse_float=_parse_float, parse_int=_parse_int, parse_constant=_reject_constant
            )
        except (ValueError, RecursionError) as exc:
            if last_without_newline:
                return "truncated_line", f"the last line has no newline and is not valid JSON ({exc})"
            if not text.strip():
                return "invalid_json", "blank line"
            return "invalid_json", f"not valid JSON: {exc}"
        if not isinstance(record, dict):
            return "invalid_json", f"a JSON {_json_type(record)}, not an object"

        fields = self.stream.fields
        for f in fields:
            if f.required and record.get(f.name) is None:
                return "missing_field", f"{f.name} is {'null' if f.name in record else 'absent'}"
        for f in fields:
            value = record.get(f.name)
            if value is not None and not _type_ok(f.kind, value):
                return "wrong_type", f"{f.name} must be {_EXPECTED[f.kind]}, got {_short(value)}"
        for f in fields:
            value = record.get(f.name)
            if f.kind == "enum" and value is not None and value not in f.values:
                return "bad_enum", f"{f.name} = {_short(value)} is not one of {', '.join(f.values)}"
        for f in fields:
            value = record.get(f.name)
            if f.kind in ("number", "integer") and value is not None and (problem := _range_problem(f, value)):
                return "out_of_range", problem
        for path, value in _walk(record):
            if isinstance(value, int | float) and _jsonb_cannot_store(value):
                return "out_of_range", f"{path} = {value.literal} is too large or too small for PostgreSQL"
        for f in fields:
            value = record.get(f.name)
            if f.kind == "timestamp" and value is not None and (problem := _timestamp_problem(value)):
                return "bad_timestamp", f"{f.name} = {_short(value)} {problem}"
        for f in self._ids:
            value = record[f.name]
            if not value:
                return "bad_id", f"{f.name} is empty"
            if f.prefix and (not value.startswith(f.prefix) or len(value) == len(f.prefix)):
                return "bad_id", f"{f.name} = {_short(value)} does not start with {f.prefix!r} followed by an id"
        for f in self._bounded:
            value = record.get(f.name)
            if isinstance(value, str) and len(value) > contract.MAX_ID_LENGTH:
                return "bad_id", (f"{f.name} has {len(value):,} characters, more than the maximum "
                                  f"{contract.MAX_ID_LENGTH}: {_short(value)}")
        for path, value in _walk(record):
            if isinstance(value, str) and (bad := _BAD_TEXT.search(value)):
                what = "NUL (\\u0000)" if bad.group() == "\x00" else "an unpaired surrogate"
                return "invalid_text", f"{_short(path)} contains {what}, which PostgreSQL cannot store"
        return None


_validators: dict[str, Validator] = {}


def validator(stream: str) -> Validator:
    """The Validator of a stream, built once per process."""
    if stream not in _validators:
        _validators[stream] = Validator(contract.STREAMS[stream])
    return _validators[stream]
