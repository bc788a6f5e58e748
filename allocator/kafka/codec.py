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
from allocator.data.schema import is_price_column

SCHEMA_VERSION = "sor-l1/1"
HEADER_SCHEMA = "schema"
HEADER_KIND = "kind"
KIND_ROW = b"row"
KIND_START = b"start"
KIND_END = b"end"
REPLAY_INDEX = "n"  # position of the row in its replay, 0-based
# Keys every row message must carry with a value; one without them is counted as undecodable, never kept.
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
    frame: pd.DataFrame, first_index: int = 0, prev_sequence: np.ndarray | None = None
) -> list[bytes]:
    """One compact JSON document per row, built column-wise by Arrow (shortest round-trip floats).

    NaN prices become null; strings are JSON-escaped. No per-row Python work besides the final split.
    """
    if frame.empty:
        return []
    pieces: list[pa.Array | str] = []
    index = pa.array(np.arange(first_index, first_index + len(frame), dtype=np.int64))
    fields: list[tuple[str, pa.Array | pd.Series]] = [(REPLAY_INDEX, index)]
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
    if name in STRING_COLUMNS:
        text = pc.replace_substring(pc.replace_substring(arr.cast(pa.string()), "\\", "\\\\"), '"', '\\"')
        text = pc.binary_join_element_wise('"', text, '"', "")
    else:
        if pa.types.is_floating(arr.type):
            arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, arr.type), arr)
        text = arr.cast(pa.string())
    return pc.fill_null(text, "null")


def control_message(kind: bytes, **fields: Any) -> bytes:
    return json.dumps({"type": kind.decode(), **fields}, separators=(",", ":")).encode()


@dataclass
class DecodedBatch:
    frame: pd.DataFrame
    undecodable: int = 0
    errors: list[str] = field(default_factory=list)


def decode_rows(values: Sequence[bytes], columns: Sequence[str]) -> DecodedBatch:
    """Parse a batch of row messages into a frame with the loader's dtypes; bad messages are counted."""
    if not values:
        return DecodedBatch(_empty_frame(columns))
    schema = pa.schema(
        [(REPLAY_INDEX, pa.int64()), (PREVIOUS_SEQUENCE, pa.int64())] + [(c, column_type(c)) for c in columns]
    )
    options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        table = pajson.read_json(io.BytesIO(b"\n".join(values)), parse_options=options)
        if not any(table.column(key).null_count for key in ROW_KEYS):
            return DecodedBatch(_to_frame(table, columns))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    # Slow path, only for a batch holding a bad message: keep the good ones, count the rest.
    good, errors = [], []
    for value in values:
        try:
            doc = json.loads(value)
            if not isinstance(doc, dict) or any(doc.get(key) is None for key in ROW_KEYS):
                raise ValueError(f"not a market-data row (needs {', '.join(ROW_KEYS)})")
            pajson.read_json(io.BytesIO(value), parse_options=options)
            good.append(value)
        except (ValueError, UnicodeDecodeError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            errors.append(" ".join(str(exc).split())[:120])
    batch = decode_rows(good, columns) if good else DecodedBatch(_empty_frame(columns))
    return DecodedBatch(batch.frame, undecodable=len(values) - len(good), errors=errors)


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
