"""The wire codec between the producer and the consumer (client settings: allocator.kafka.settings).

Each market-data row is one compact JSON object with Databento's column names (so the consumer's
frame is the loader's frame), plus `n`, the row's position in the replay, which lets the consumer
prove that nothing was lost or doubled. A replay is framed by two control messages on the same key
(hence the same partition, hence in order): `start` (run id, window, columns, row count) and `end`
(rows sent). Decoding is batched through pyarrow's JSON reader, so the consumer does not parse
messages one by one in Python.
"""

from __future__ import annotations

import io
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

SCHEMA_VERSION = "sor-l1/2"  # /2: every row carries its replay's run id ("r")
HEADER_SCHEMA = "schema"
HEADER_KIND = "kind"
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
    shifted = frame.groupby("publisher_id", sort=False, observed=True)["sequence"].shift(1)
    return shifted.fillna(-1).to_numpy(dtype=np.int64)


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
    pieces: list[pa.Array | str] = []
    index = pa.array(np.arange(first_index, first_index + len(frame), dtype=np.int64))
    fields: list[tuple[str, pa.Array | pd.Series]] = [(REPLAY_INDEX, index)]
    if run_id is not None:
        fields.append((RUN_ID, pa.array(np.full(len(frame), run_id, dtype=object), pa.string())))
    if prev_sequence is not None:
        fields.append((PREVIOUS_SEQUENCE, pa.array(prev_sequence, mask=prev_sequence < 0)))
    for position, (name, values) in enumerate([*fields, *((c, frame[c]) for c in frame.columns)]):
        pieces.append(("{" if position == 0 else ",") + json.dumps(name) + ":")
        pieces.append(_json_values(name, values))
    pieces.append("}")
    joined = pc.binary_join_element_wise(*pieces, "")
    return [value.as_buffer().to_pybytes() for value in joined]


def _json_values(name: str, values: pd.Series | pa.Array) -> pa.Array:
    """JSON text of one column: numbers as shortest decimals, null for missing, strings quoted."""
    arr = (
        values
        if isinstance(values, pa.Array)
        else pa.array(
            np.asarray(values.astype(object))
            if isinstance(values.dtype, pd.CategoricalDtype)
            else values.to_numpy(),
            from_pandas=True,
        )
    )
    if name in STRING_COLUMNS or name == RUN_ID:
        text = pc.replace_substring(pc.replace_substring(arr.cast(pa.string()), "\\", "\\\\"), '"', '\\"')
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
    }
    for name, (low, high) in optional.items():
        if name in doc and (problem := _bounded(doc, name, low, high)):
            return problem
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


def decode_rows(values: Sequence[bytes], columns: Sequence[str], run_id: str | None = None) -> DecodedBatch:
    """Parse a batch of row messages into a frame with the loader's dtypes; bad messages are counted.

    Every message is checked, not only those of a batch that fails to parse: a row must carry its replay
    index and every integer column (the loader never leaves one empty), else it is undecodable and never
    takes a replay index from the real row. With `run_id`, rows of other replays are counted in `foreign`.
    """
    if not values:
        return DecodedBatch(_empty_frame(columns))
    fields = [(REPLAY_INDEX, pa.int64()), (PREVIOUS_SEQUENCE, pa.int64()), (RUN_ID, pa.string())]
    schema = pa.schema(fields + [(c, column_type(c)) for c in columns])
    options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    table, errors = _parse(values, options)
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
    undecodable = len(values) - int(valid.sum())
    if not valid.all():
        table = table.filter(pa.array(valid))
    foreign: dict[str, int] = {}
    if run_id is not None and table.num_rows:
        mine = pc.equal(table.column(RUN_ID), pa.scalar(run_id))
        if not pc.all(mine).as_py():
            counts = pc.value_counts(pc.filter(table.column(RUN_ID), pc.invert(mine)))
            foreign = {str(c["values"]): int(c["counts"]) for c in counts.to_pylist()}
            table = table.filter(mine)
    return DecodedBatch(_to_frame(table, columns), undecodable, errors, foreign)


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
    data: dict[str, Any] = {
        REPLAY_INDEX: table.column(REPLAY_INDEX).to_numpy(),
        PREVIOUS_SEQUENCE: table.column(PREVIOUS_SEQUENCE).fill_null(-1).to_numpy(),
    }
    for name in columns:
        col = table.column(name)
        if name in STRING_COLUMNS:
            data[name] = pd.Categorical(col.to_pandas())
        elif column_type(name) == pa.float64():
            data[name] = col.to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            data[name] = col.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    return pd.DataFrame(data)


def _empty_frame(columns: Sequence[str]) -> pd.DataFrame:
    stream_fields = {REPLAY_INDEX: np.empty(0, np.int64), PREVIOUS_SEQUENCE: np.empty(0, np.int64)}
    return pd.DataFrame(stream_fields | {c: np.empty(0, np.int64) for c in columns})


def frame_from_batches(batches: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    """Concatenate decoded batches into the loader's frame layout (categories re-unified)."""
    if not batches:
        return _empty_frame(columns)
    frame = pd.concat(batches, ignore_index=True)
    for name in STRING_COLUMNS:
        if name in frame.columns:
            frame[name] = frame[name].astype(object).astype("category")
    for name in TIMESTAMP_COLUMNS:
        if name in frame.columns:
            frame[name] = frame[name].astype(np.int64)
    return frame
