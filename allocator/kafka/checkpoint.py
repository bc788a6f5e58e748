"""A consumer group's local checkpoint: the rows it decoded and the offsets after them.

After each batch the new rows are appended as an Arrow segment and the metadata (the replay's start
message, the segment list, the next offset per partition, the end message's row count) is replaced
atomically; only then are the offsets committed to the broker. A restarted consumer therefore trusts
the checkpoint, not the broker's committed offsets, and resumes exactly where the checkpoint ends.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pyarrow as pa

from allocator.kafka.codec import REPLAY_INDEX, plain_table


class CheckpointMeta(TypedDict):
    """checkpoint.json: what a restart needs besides the segments themselves."""

    start: dict[str, Any]  # the replay's start message ({} before one arrived)
    segments: list[str]  # Arrow files of decoded rows, in arrival order
    offsets: dict[str, int]  # next offset per partition (JSON keys are strings)
    end_rows: int | None  # rows announced by the replay's end message, once it arrived


def empty_meta() -> CheckpointMeta:
    return {"start": {}, "segments": [], "offsets": {}, "end_rows": None}


def state_directory(root: str | Path, group: str, topic: str) -> Path:
    """The checkpoint directory of a consumer group on a topic, under the state root."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{group}--{topic}")
    return Path(root) / safe


class Checkpoint:
    """Decoded batches and the next offsets, written before offsets are committed (see module doc)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.meta_path = directory / "checkpoint.json"

    def load(self) -> CheckpointMeta | None:
        if not self.meta_path.exists():
            return None
        meta: CheckpointMeta = json.loads(self.meta_path.read_text())
        return meta

    def batches(self, meta: CheckpointMeta) -> list[pa.Table]:
        tables = []
        for name in meta["segments"]:
            with pa.memory_map(str(self.directory / name)) as source:
                tables.append(plain_table(pa.ipc.open_file(source).read_all()))
        return tables

    def save(self, batch: pa.Table | None, meta: CheckpointMeta) -> None:
        """Append `batch` (if it has rows) as a segment, then replace the metadata atomically."""
        if batch is not None and batch.num_rows:
            name = f"segment-{len(meta['segments']):06d}.arrow"
            table = batch
            tmp = self.directory / (name + ".tmp")
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            os.replace(tmp, self.directory / name)
            meta["segments"].append(name)
        tmp = self.meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self.meta_path)

    def reset(self) -> None:
        """Forget everything (a newer replay replaces the one checkpointed)."""
        for path in self.directory.glob("segment-*.arrow"):
            path.unlink()
        self.meta_path.unlink(missing_ok=True)


def seen_rows(batches: list[pa.Table], rows: int) -> np.ndarray:
    """Which replay indices the checkpointed batches hold (bool [rows])."""
    seen = np.zeros(rows, dtype=bool)
    for batch in batches:
        seen[batch[REPLAY_INDEX].to_numpy()] = True
    return seen
