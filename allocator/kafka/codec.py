"""The wire codec between the producer and the consumer (client settings: allocator.kafka.settings).

The layout is versioned (SCHEMA_VERSION, the `schema` header of every message) and specified in
docs/wire.md. A replay is framed by two JSON control messages on the same key (hence the same
partition, hence in order): `start` (run id, window, columns, row count, wire format) and `end` (rows
sent). Rows travel in one of two formats, announced by the `format` header of every message:

* `arrow` (the default): each message is a complete Arrow IPC stream (schema + one record batch) of up
  to `rows_per_message` rows, built column-wise from the frame without per-row Python work. The
  consumer reads each record batch in place, and only the columns it needs.
* `json`: one compact JSON object per row with Databento's column names, readable with kcat; built
  and parsed column-wise by Arrow.

Every row carries `n`, its position in the replay (which lets the consumer prove that nothing was lost
or doubled), `r`, its replay's run id, and `p`, its venue's previous Databento sequence.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from allocator.data.loader import STRING_COLUMNS, TIMESTAMP_COLUMNS
from allocator.data.schema import MAX_LEVELS, REQUIRED_COLUMNS, is_price_column
from allocator.errors import UserError

# /2: every row carries its replay's run id ("r"); /3: rows as JSON or Arrow, told by the `format` header
SCHEMA_VERSION = "sor-l1/3"
HEADER_SCHEMA = "schema"
HEADER_KIND = "kind"
HEADER_FORMAT = "format"  # how this message's value is encoded: json or arrow (control messages: json)
WIRE_ARROW = "arrow"
WIRE_JSON = "json"
WIRE_FORMATS = (WIRE_ARROW, WIRE_JSON)  # what a row message can be (its `format` header)
# The producer's choice: Arrow for full messages (history, unpaced), JSON for the paced window's messages of
# one instant, where Arrow's per-message metadata makes it slower than JSON (docs/wire.md, "auto").
WIRE_AUTO = "auto"
WIRE_CHOICES = (WIRE_AUTO, WIRE_ARROW, WIRE_JSON)
DEFAULT_WIRE = WIRE_AUTO
KIND_ROW = b"row"
KIND_START = b"start"
KIND_END = b"end"
REPLAY_INDEX = "n"  # position of the row in its replay, 0-based
RUN_ID = "r"  # the run id of the replay the row belongs to (its start message's `run_id`)
# Keys every row message must carry with a value (besides every integer column of the replay); one
# without them is counted as undecodable, never kept.
ROW_KEYS = (REPLAY_INDEX, "ts_event", "publisher_id")
ROW_PREFIX = b'{"n":'  # every row message starts with its replay index (see encode_rows)
PREVIOUS_SEQUENCE = (
    "p"  # the Databento sequence of the venue's previous row in the replay (null for its first)
)


class WireError(UserError):
    """Messages in a layout this version cannot read (another SCHEMA_VERSION)."""


def column_type(name: str) -> pa.DataType:
    """The wire type of a Databento column (the same typing the CSV loader uses)."""
    if name in STRING_COLUMNS:
        return pa.string()
    if is_price_column(name):
        return pa.float64()
    return pa.int64()


def previous_sequence(frame: pd.DataFrame) -> np.ndarray:
    """Per row, the sequence of the same venue's previous row (-1 for a venue's first row).

    Sent with each row so the consumer can name the venue and sequence range of any gap, even though a
    single-symbol extract's sequence numbers are not contiguous.
    """
    if "sequence" not in frame.columns or frame.empty:
        return np.full(len(frame), -1, dtype=np.int64)
    venue = frame["publisher_id"].to_numpy()
    by_venue = np.argsort(venue, kind="stable")  # each venue's rows, in frame order
    sequence = frame["sequence"].to_numpy(dtype=np.int64)[by_venue]
    previous = np.r_[-1, sequence[:-1]]
    sorted_venue = venue[by_venue]
    previous[np.r_[True, sorted_venue[1:] != sorted_venue[:-1]]] = -1  # a venue's first row
    result = np.empty(len(frame), dtype=np.int64)
    result[by_venue] = previous
    return result


def encode_rows(
    frame: pd.DataFrame,
    first_index: int = 0,
    prev_sequence: np.ndarray | None = None,
    run_id: str | None = None,
) -> list[bytes]:
    """One compact JSON document per row, built column-wise by Arrow (shortest round-trip floats).

    NaN prices become null; strings are JSON-escaped. No per-row Python work besides the final split.
    `run_id` tags each row with its replay, so a consumer never mixes two replays written at once.
    """
    if frame.empty:
        return []
    return encode_json_table(arrow_columns(frame), first_index, prev_sequence, run_id)


def encode_json_table(
    columns: pa.Table,
    first_index: int = 0,
    prev_sequence: np.ndarray | None = None,
    run_id: str | None = None,
) -> list[bytes]:
    """encode_rows of rows already converted by arrow_columns (as the producer takes them)."""
    rows = columns.num_rows
    if not rows:
        return []
    fields: list[tuple[str, pa.Array | pa.ChunkedArray]] = [
        (REPLAY_INDEX, pa.array(np.arange(first_index, first_index + rows, dtype=np.int64)))
    ]
    if run_id is not None:
        fields.append((RUN_ID, pa.repeat(pa.scalar(run_id, pa.string()), rows)))
    if prev_sequence is not None:
        fields.append((PREVIOUS_SEQUENCE, pa.array(prev_sequence, mask=prev_sequence < 0)))
    pieces: list[pa.Array | pa.ChunkedArray | str] = []
    for position, (name, values) in enumerate(
        [*fields, *zip(columns.column_names, columns.columns, strict=True)]
    ):
        pieces.append(("{" if position == 0 else ",") + json.dumps(name) + ":")
        pieces.append(_json_values(name, values))
    pieces.append("}")
    joined = pc.binary_join_element_wise(*pieces, "")
    return [value.as_buffer().to_pybytes() for value in joined]


CONTROL_CHARACTERS = "[\\x00-\\x1f]"  # what a JSON string must escape besides the quote and the backslash


def _json_values(name: str, arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """JSON text of one column: numbers as shortest decimals, null for missing, strings quoted."""
    if name in STRING_COLUMNS or name == RUN_ID:
        strings = arr.cast(pa.string())
        if pc.any(pc.match_substring_regex(strings, CONTROL_CHARACTERS)).as_py():  # rare: let json escape
            quoted = [None if s is None else json.dumps(s, ensure_ascii=False) for s in strings.to_pylist()]
            return pc.fill_null(pa.array(quoted, pa.string()), "null")
        text = pc.replace_substring(pc.replace_substring(strings, "\\", "\\\\"), '"', '\\"')
        text = pc.binary_join_element_wise('"', text, '"', "")
    else:
        if pa.types.is_floating(arr.type):
            arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, arr.type), arr)
        text = arr.cast(pa.string())
    return pc.fill_null(text, "null")


def control_message(kind: bytes, **fields: Any) -> bytes:
    return json.dumps({"type": kind.decode(), **fields}, separators=(",", ":")).encode()


# Bounds on what a control message may announce: the consumer allocates by the announced row count, so a
# start message must not be able to ask for terabytes (the frame of 10^8 rows already takes tens of GB).
MAX_REPLAY_ROWS = 100_000_000
MAX_TIMESTAMP_NS = 4_102_444_800 * 10**9  # 2100-01-01: Databento timestamps are ns since 1970
MAX_RUN_ID_CHARS = 64


def control_problem(doc: Any, kind: bytes) -> str | None:
    """Why `doc` is not a usable start/end document (its fields missing, mistyped or out of bounds), or None."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    run_id = doc.get("run_id")
    if not isinstance(run_id, str) or not 0 < len(run_id) <= MAX_RUN_ID_CHARS:
        return f"run_id must be a string of 1 to {MAX_RUN_ID_CHARS} characters"
    if (problem := _bounded(doc, "rows", 0, MAX_REPLAY_ROWS)) or kind != KIND_START:
        return problem
    for name in ("window_start_ns", "window_end_ns"):
        if problem := _bounded(doc, name, 0, MAX_TIMESTAMP_NS):
            return problem
    if doc["window_start_ns"] > doc["window_end_ns"]:
        return "window_start_ns is after window_end_ns"
    optional = {
        "history_rows": (0, doc["rows"]),
        "history_start_ns": (0, doc["window_start_ns"]),
        "levels": (1, MAX_LEVELS),
        "rows_per_message": (1, MAX_ROWS_PER_MESSAGE),
    }
    for name, (low, high) in optional.items():
        if name in doc and (problem := _bounded(doc, name, low, high)):
            return problem
    if doc.get("wire", WIRE_JSON) not in WIRE_CHOICES:
        return f"wire must be one of {', '.join(WIRE_CHOICES)}"
    columns = doc.get("columns")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        return "columns must be a list of names"
    if len(set(columns)) != len(columns) or not set(REQUIRED_COLUMNS) <= set(columns):
        return f"columns must be unique and hold {', '.join(REQUIRED_COLUMNS)}"
    venues = doc.get("venue_rows", {})
    if not isinstance(venues, dict) or not all(
        _is_int(v) and 0 <= v <= doc["rows"] and str(k).isdigit() for k, v in venues.items()
    ):
        return "venue_rows must map publisher ids to row counts within rows"
    if not isinstance(doc.get("price_format", ""), str) or not isinstance(doc.get("source", ""), str):
        return "price_format and source must be strings"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bounded(doc: dict[str, Any], name: str, low: int, high: int) -> str | None:
    value = doc.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return None
    shown = repr(value) if len(repr(value)) <= 30 else repr(value)[:27] + "..."
    return f"{name} {shown} is not an integer in {low}..{high}"


@dataclass
class DecodedBatch:
    frame: pd.DataFrame
    undecodable: int = 0
    errors: list[str] = field(default_factory=list)
    foreign: dict[str, int] = field(default_factory=dict)  # valid rows of other replays, by run id


@dataclass
class DecodedTable:
    """A poll's rows still in Arrow (n, p and the columns asked for; chunks point into the messages
    where the format allows): the consumer keeps them so until it builds the replay's one frame."""

    table: pa.Table
    undecodable: int = 0
    errors: list[str] = field(default_factory=list)
    foreign: dict[str, int] = field(default_factory=dict)  # valid rows of other replays, by run id


def decode_rows(values: Sequence[bytes], columns: Sequence[str], run_id: str | None = None) -> DecodedBatch:
    """Parse a batch of JSON row messages into a frame with the loader's dtypes; bad messages are counted
    (decode_rows_table, as a frame)."""
    return _as_frame(decode_rows_table(values, columns, run_id), columns)


def decode_rows_table(
    values: Sequence[bytes], columns: Sequence[str], run_id: str | None = None
) -> DecodedTable:
    """Parse a batch of JSON row messages; bad messages are counted.

    Only `columns` (plus n, p, r) are converted: the explicit schema makes the reader skip other keys.
    Every message is checked, not only those of a batch that fails to parse: a row must carry its replay
    index and every integer column (the loader never leaves one empty), else it is undecodable and never
    takes a replay index from the real row. With `run_id`, rows of other replays are counted in `foreign`.
    """
    fields = [(REPLAY_INDEX, pa.int64()), (PREVIOUS_SEQUENCE, pa.int64()), (RUN_ID, pa.string())]
    schema = pa.schema(fields + [(c, column_type(c)) for c in columns])
    if not values:
        return DecodedTable(schema.empty_table().select(_kept(columns)))
    options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    table, errors = _parse(values, options)
    return _checked(table, columns, run_id, errors, dropped=len(values) - table.num_rows)


def _kept(columns: Sequence[str]) -> list[str]:
    """The fields a decoded row keeps: its replay index, its venue's previous sequence, its columns."""
    return [REPLAY_INDEX, PREVIOUS_SEQUENCE, *columns]


def _as_frame(decoded: DecodedTable, columns: Sequence[str]) -> DecodedBatch:
    frame = _to_frame(decoded.table, columns) if decoded.table.num_rows else _empty_frame(columns)
    return DecodedBatch(frame, decoded.undecodable, decoded.errors, decoded.foreign)


def _checked(
    table: pa.Table, columns: Sequence[str], run_id: str | None, errors: list[str], dropped: int
) -> DecodedTable:
    """The decoded rows that are usable rows of our replay; the others counted (`dropped` messages could
    not be read at all)."""
    required = [REPLAY_INDEX, *ROW_KEYS[1:], *(c for c in columns if column_type(c) == pa.int64())]
    if run_id is not None:
        required.append(RUN_ID)
    valid = np.ones(table.num_rows, dtype=bool)
    absent = []
    for name in dict.fromkeys(required):
        if table.column(name).null_count:
            absent.append(repr(name))
            valid &= table.column(name).is_valid().to_numpy(zero_copy_only=False)
    if absent:
        errors.append("not a market-data row: no " + ", ".join(absent[:3]) + (", ..." if absent[3:] else ""))
    undecodable = dropped + table.num_rows - int(valid.sum())
    if not valid.all():
        table = table.filter(pa.array(valid))
    foreign: dict[str, int] = {}
    if run_id is not None and table.num_rows:
        mine = pc.equal(table.column(RUN_ID), pa.scalar(run_id))
        if not pc.all(mine).as_py():
            counts = pc.value_counts(pc.filter(table.column(RUN_ID), pc.invert(mine)))
            foreign = {str(c["values"]): int(c["counts"]) for c in counts.to_pylist()}
            table = table.filter(mine)
    return DecodedTable(table.select(_kept(columns)), undecodable, errors, foreign)


def _parse(values: Sequence[bytes], options: pajson.ParseOptions) -> tuple[pa.Table, list[str]]:
    """All messages as one table (one Arrow call); only when that fails, message by message, dropping
    the ones that are not JSON objects of the row's types. Returns the table and the errors seen."""
    try:
        return pajson.read_json(io.BytesIO(b"\n".join(values)), parse_options=options), []
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    good, errors = [], []
    for value in values:
        try:
            if not isinstance(json.loads(value), dict):
                raise ValueError("not a JSON object")
            pajson.read_json(io.BytesIO(value), parse_options=options)
            good.append(value)
        except (ValueError, UnicodeDecodeError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            errors.append(" ".join(str(exc).split())[:120])
    if not good:
        return options.explicit_schema.empty_table(), errors
    return pajson.read_json(io.BytesIO(b"\n".join(good)), parse_options=options), errors


def _to_frame(table: pa.Table, columns: Sequence[str]) -> pd.DataFrame:
    """The decoded rows as int64 and float64 (null → NaN) columns and Arrow-backed strings, converted by
    Arrow with a block per column (no pandas consolidation copy). Strings become the loader's
    categoricals once, in frame_from_batches: per batch that would be work done twice."""
    table = table.select([REPLAY_INDEX, PREVIOUS_SEQUENCE, *columns])
    for position, name in enumerate(table.column_names):
        col = table.column(name)
        if col.null_count and pa.types.is_integer(col.type):  # p's first rows; never a checked column
            table = table.set_column(
                position, name, pc.fill_null(col, -1 if name == PREVIOUS_SEQUENCE else 0)
            )
    return table.to_pandas(split_blocks=True)


def _empty_frame(columns: Sequence[str]) -> pd.DataFrame:
    stream_fields = {REPLAY_INDEX: np.empty(0, np.int64), PREVIOUS_SEQUENCE: np.empty(0, np.int64)}
    return pd.DataFrame(stream_fields | {c: np.empty(0, np.int64) for c in columns})


def frame_from_tables(tables: list[pa.Table], columns: Sequence[str]) -> pd.DataFrame:
    """Decoded tables (decode_*_table, or checkpoint segments) as one frame in the loader's layout: one
    concatenation, one conversion."""
    tables = [plain_table(t).select(_kept(columns)) for t in tables if t.num_rows]
    if not tables:
        return _empty_frame(columns)
    return frame_from_batches([_to_frame(pa.concat_tables(tables), columns)], columns)


def plain_table(table: pa.Table) -> pa.Table:
    """`table` without pandas metadata and with dictionary columns as their values (checkpoint segments
    written from pandas frames by earlier versions), so that it concatenates with decoded tables."""
    fields = [
        pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else pa.field(f.name, f.type)
        for f in table.schema
    ]
    target = pa.schema(fields)
    return table if table.schema.equals(target) and not table.schema.metadata else table.cast(target)


def frame_from_batches(batches: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    """Concatenate decoded batches into the loader's frame layout (strings as categoricals, their
    categories sorted and shared by all rows)."""
    if not batches:
        return _empty_frame(columns)
    frame = pd.concat(batches, ignore_index=True)
    for name in STRING_COLUMNS:
        if name in frame.columns:
            strings = frame[name]
            if isinstance(strings.dtype, pd.CategoricalDtype):  # e.g. checkpointed batches
                strings = strings.astype(object)
            frame[name] = strings.astype("category")
    for name in TIMESTAMP_COLUMNS:
        if name in frame.columns:
            frame[name] = frame[name].astype(np.int64)
    return frame


# ---------------------------------------------------------------------------------- Arrow wire format

ARROW_CONTINUATION = b"\xff\xff\xff\xff"  # every Arrow IPC message (hence every Arrow row message) starts so
# librdkafka's default message.max.bytes, and noida-db's limit (docs/brokers.md); an Arrow message is
# filled to 90 % of it, its metadata (~8 KiB at 10 book levels) included.
MAX_MESSAGE_BYTES = 1_000_000
ARROW_MESSAGE_BYTES = int(MAX_MESSAGE_BYTES * 0.9) - 16_384
MAX_ROWS_PER_MESSAGE = 8192


def arrow_schema(columns: Sequence[str]) -> pa.Schema:
    """The schema of a replay's Arrow row messages: n, r, p, then its columns with the loader's types."""
    return _arrow_schema(tuple(columns))


@functools.lru_cache(maxsize=16)
def _arrow_schema(columns: tuple[str, ...]) -> pa.Schema:
    fields = [(REPLAY_INDEX, pa.int64()), (RUN_ID, pa.string()), (PREVIOUS_SEQUENCE, pa.int64())]
    return pa.schema(fields + [(c, column_type(c)) for c in columns])


@functools.lru_cache(maxsize=16)
def _schema_message(columns: tuple[str, ...]) -> bytes:
    """The encapsulated IPC schema message every row message of a replay with `columns` starts with."""
    return bytes(_arrow_schema(columns).serialize().to_pybytes())


def rows_per_message(
    columns: Sequence[str], wire: str, widths: dict[str, int] | None = None, run_id_bytes: int = 32
) -> int:
    """At most how many rows one message holds: 1 for JSON (kcat shows a row per message); for Arrow, as
    many as fit in ARROW_MESSAGE_BYTES (the metadata is then ~1 % of a message). `widths` gives the
    longest value, in bytes, of each string column (default 8); a row's size is then exact."""
    if wire == WIRE_JSON:
        return 1  # (auto: its full messages are Arrow's)
    strings = [c for c in columns if column_type(c) == pa.string()]
    fixed = 8 * (len(columns) - len(strings)) + 8 + 8  # the numbers, n and p
    variable = (4 + run_id_bytes) + sum(4 + (widths or {}).get(c, 8) for c in strings)  # offsets + bytes
    return max(1, min(MAX_ROWS_PER_MESSAGE, ARROW_MESSAGE_BYTES // (fixed + variable)))


def string_widths(frame: pd.DataFrame) -> dict[str, int]:
    """The longest value, in UTF-8 bytes, of each string column of `frame` (rows_per_message's widths)."""
    widths = {}
    for name in frame.columns:
        if column_type(name) == pa.string() and len(frame):
            values = (
                frame[name].cat.categories
                if isinstance(frame[name].dtype, pd.CategoricalDtype)
                else frame[name]
            )
            widths[name] = max((len(str(v).encode()) for v in values.dropna().unique()), default=0)
    return widths


def message_starts(
    ts: np.ndarray, per_message: int, paced_from: int | None, paced_per_message: int | None = None
) -> np.ndarray:
    """The first row of every message. Rows go in runs of up to `per_message`; from row `paced_from` on
    (the paced window; None = nothing paced) a message also ends where ts_event changes, so each paced
    message holds rows of one instant and is sent exactly when they are due. `paced_per_message` (default
    `per_message`) caps the paced messages instead: 1 for the JSON messages of the auto format."""
    rows = len(ts)
    if per_message <= 1:
        return np.arange(rows, dtype=np.int64)
    unpaced = rows if paced_from is None else min(paced_from, rows)
    head = np.arange(0, unpaced, per_message, dtype=np.int64)
    if unpaced == rows:
        return head
    if paced_per_message is not None and paced_per_message != per_message:
        tail = message_starts(ts[unpaced:], paced_per_message, 0)
        return np.r_[head, unpaced + tail]
    window = ts[unpaced:]
    run_starts = np.r_[0, np.flatnonzero(window[1:] != window[:-1]) + 1].astype(np.int64)
    lengths = np.diff(np.r_[run_starts, len(window)])
    pieces = -(-lengths // per_message)  # a run longer than per_message is split
    first_piece = np.repeat(np.cumsum(pieces) - pieces, pieces)
    within = np.arange(int(pieces.sum()), dtype=np.int64) - first_piece
    return np.r_[head, unpaced + np.repeat(run_starts, pieces) + within * per_message]


def encode_arrow(
    frame: pd.DataFrame,
    bounds: Sequence[int],
    first_index: int = 0,
    prev_sequence: np.ndarray | None = None,
    run_id: str = "",
) -> list[bytes]:
    """One Arrow IPC stream (the replay's schema message + one record batch) per message; message k holds
    rows bounds[k]:bounds[k+1] of `frame` (`first_index` is the replay index of its first row).

    NaN prices stay NaN (the JSON format writes them as null; both decode to NaN).
    """
    return encode_arrow_table(arrow_columns(frame), bounds, first_index, prev_sequence, run_id)


def arrow_columns(frame: pd.DataFrame) -> pa.Table:
    """The frame's columns with their wire types, without a copy where the dtype already is the wire
    type (categorical strings become plain strings)."""
    return pa.Table.from_arrays(
        [_arrow_column(frame[c], column_type(c)) for c in frame.columns], names=list(frame.columns)
    )


def encode_arrow_table(
    columns: pa.Table,
    bounds: Sequence[int],
    first_index: int = 0,
    prev_sequence: np.ndarray | None = None,
    run_id: str = "",
) -> list[bytes]:
    """encode_arrow of rows already converted by arrow_columns (the producer takes them, in sending
    order, from the whole replay converted once)."""
    rows = columns.num_rows
    prev = prev_sequence if prev_sequence is not None else np.full(rows, -1, dtype=np.int64)
    arrays = [
        pa.array(np.arange(first_index, first_index + rows, dtype=np.int64)),
        pa.repeat(pa.scalar(run_id, pa.string()), rows),
        pa.array(prev, mask=prev < 0),
        *(
            column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
            for column in columns.columns
        ),
    ]
    batch = pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(columns.column_names))
    schema = _schema_message(tuple(columns.column_names))
    return [
        b"".join((schema, batch.slice(start, end - start).serialize()))
        for start, end in itertools.pairwise(bounds)
    ]


def _arrow_column(values: pd.Series, wire_type: pa.DataType) -> pa.Array:
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        dictionary = pa.array(values.cat.categories.astype(str).to_numpy(dtype=object), pa.string())
        return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), dictionary).cast(wire_type)
    values_array = values.to_numpy()
    array = pa.array(values_array, from_pandas=values_array.dtype == object)  # no copy for int64, float64
    return array if array.type == wire_type else array.cast(wire_type)


def decode_arrow(
    values: Sequence[bytes],
    columns: Sequence[str],
    replay_columns: Sequence[str],
    run_id: str | None = None,
) -> DecodedBatch:
    """decode_arrow_table, as a frame of `columns` with the loader's dtypes."""
    return _as_frame(decode_arrow_table(values, columns, replay_columns, run_id), columns)


def decode_arrow_table(
    values: Sequence[bytes],
    columns: Sequence[str],
    replay_columns: Sequence[str],
    run_id: str | None = None,
) -> DecodedTable:
    """Read a batch of Arrow row messages of a replay with `replay_columns`, keeping `columns` only.

    Each message's record batch is read in place (no copy: its arrays point into the message), and only
    the columns needed are validated and checked; nothing is converted or copied here. A message that is
    not a record batch of the replay's schema is undecodable (or foreign, if it is a well-formed row
    message of another run); the rows are then checked as JSON rows are (decode_rows_table).
    """
    schema = arrow_schema(replay_columns)
    if not values:
        return DecodedTable(schema.empty_table().select(_kept(columns)))
    prefix = _schema_message(tuple(replay_columns))
    batches: list[pa.RecordBatch] = []
    errors: list[str] = []
    foreign: dict[str, int] = {}
    dropped = 0
    for value in values:
        size = len(prefix) if value.startswith(prefix) else _schema_length(value, schema)
        if size:
            try:
                batches.append(pa.ipc.read_record_batch(pa.py_buffer(value)[size:], schema))
                continue
            except (pa.ArrowException, ValueError, OSError) as exc:
                problem, other_run, rows = _arrow_problem(exc), None, 0
        else:
            problem, other_run, rows = _other_message(value, run_id)
        if other_run is not None:
            foreign[other_run] = foreign.get(other_run, 0) + rows
        else:
            dropped += 1
            errors.append(problem)
    wanted = [REPLAY_INDEX, RUN_ID, PREVIOUS_SEQUENCE, *columns]
    table, bad = _selected(batches, schema, wanted)
    if bad:
        dropped += bad
        errors.append(f"{bad} Arrow row message(s) with corrupt data in the columns read")
    decoded = _checked(table, columns, run_id, errors, dropped)
    for run, rows in foreign.items():
        decoded.foreign[run] = decoded.foreign.get(run, 0) + rows
    return decoded


def _selected(batches: list[pa.RecordBatch], schema: pa.Schema, wanted: list[str]) -> tuple[pa.Table, int]:
    """The `wanted` columns of the batches (a chunk each, still in the messages), validated, and how
    many batches were dropped as corrupt."""
    table = pa.Table.from_batches(batches, schema=schema).select(wanted)
    if _sound(table):
        return table, 0
    good = [one for one in (batch.select(wanted) for batch in batches) if _sound(one)]  # find the bad ones
    return pa.Table.from_batches(good, schema=table.schema), len(batches) - len(good)


def _sound(data: pa.Table | pa.RecordBatch) -> bool:
    """Buffer sizes and lengths everywhere, and the offsets and UTF-8 of variable-length columns: what a
    corrupt message could otherwise turn into a wrong value or a read out of bounds later (for a
    fixed-width column full validation checks nothing more)."""
    try:
        data.validate()
        for column in data.columns:
            if not pa.types.is_primitive(column.type):
                column.validate(full=True)
    except (pa.ArrowException, ValueError):
        return False
    return True


def _arrow_problem(exc: BaseException) -> str:
    return "not an Arrow row message: " + " ".join(str(exc).split())[:100]


def _schema_length(value: bytes, schema: pa.Schema) -> int:
    """The length of `value`'s leading schema message if that schema is the replay's (written by another
    pyarrow version, say, so not byte for byte ours); 0 otherwise."""
    if not value.startswith(ARROW_CONTINUATION) or len(value) < 8:
        return 0
    size = 8 + int.from_bytes(value[4:8], "little")
    try:
        same = pa.ipc.read_schema(pa.py_buffer(value[:size])).equals(schema)
    except (pa.ArrowException, ValueError, OSError):
        return 0
    return size if same else 0


def _other_message(value: bytes, run_id: str | None) -> tuple[str, str | None, int]:
    """A message without the replay's schema: (why it is undecodable, or the other run's id and rows)."""
    try:
        table = pa.ipc.open_stream(pa.py_buffer(value)).read_all()
    except (pa.ArrowException, ValueError, OSError) as exc:
        return _arrow_problem(exc), None, 0
    if run_id is not None and RUN_ID in table.column_names and table.num_rows:
        runs = set(table.column(RUN_ID).to_pylist())
        if len(runs) == 1 and (other := runs.pop()) not in (None, run_id):
            return "", str(other), table.num_rows
    return "Arrow row message without the replay's columns: " + ", ".join(table.column_names[:4]), None, 0
