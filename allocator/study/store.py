"""A study's `--out DIR`: finished tasks (so a rerun resumes), and the outputs.

    DIR/study.json        the settings the directory belongs to, and the code version that wrote its tasks
    DIR/tasks/KEY.parquet one finished task's rows (KEY: plan.StudyTask.key)
    DIR/orders.parquet    one row per order and strategy (summary.ROW_COLUMNS + fold, is_test)
    DIR/result.json       the JSON printed on stdout
    DIR/paired.png        each paired difference's distribution with its CI

A directory holding another study's settings is refused rather than mixed; one written by another version of
the code keeps its settings but its finished tasks are recomputed (their keys name the code version).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from allocator.errors import SettingError, UserError
from allocator.study.plan import StudyTask
from allocator.study.tasks import OrderRow

SETTINGS_FILE = "study.json"
log = logging.getLogger(__name__)


class StudyStore:
    """The finished tasks and outputs of one study under `root` (None: keep nothing, compute everything)."""

    def __init__(self, root: str | Path | None, settings: dict[str, Any]) -> None:
        self.root = Path(root) if root is not None else None
        self.settings = settings
        if self.root is not None:
            self._claim()

    def _claim(self) -> None:
        assert self.root is not None
        if self.root.exists() and not self.root.is_dir():
            raise SettingError(
                f"{{out}} {SettingError.literal(str(self.root))} is a file; give a directory", out="out"
            )
        marker = self.root / SETTINGS_FILE
        if marker.exists():
            try:
                held = json.loads(marker.read_text())["settings"]
            except (ValueError, KeyError, TypeError):
                raise SettingError(
                    f"{{out}} {SettingError.literal(str(self.root))}: {SETTINGS_FILE} is not a study's; give "
                    "another directory",
                    out="out",
                ) from None
            if held != _plain(self.settings):
                changed = sorted(
                    k for k in set(held) | set(self.settings) if held.get(k) != _plain(self.settings).get(k)
                )
                raise SettingError(
                    f"{{out}} {SettingError.literal(str(self.root))} holds a study with other settings (they differ "
                    f"in {', '.join(changed)}); give another {{out}} or delete it to start afresh",
                    out="out",
                )
        elif self.root.exists() and any(self.root.iterdir()):
            raise SettingError(
                f"{{out}} {SettingError.literal(str(self.root))} is not empty and holds no study; give a new or "
                "empty directory",
                out="out",
            )
        (self.root / "tasks").mkdir(parents=True, exist_ok=True)
        _write_text(marker, json.dumps({"settings": self.settings}, indent=2, sort_keys=True) + "\n")

    def finished(self, task: StudyTask) -> list[OrderRow] | None:
        """The task's rows from an earlier run, or None."""
        if self.root is None:
            return None
        file = self._task_file(task)
        if not file.exists():
            return None
        try:
            frame = pd.read_parquet(file)
        except (OSError, ValueError) as exc:  # a cut file from a crash: recompute it
            log.warning("%s is unreadable (%s); recomputing that task", file, exc)
            return None
        return [OrderRow(**{str(k): v for k, v in record.items()}) for record in frame.to_dict("records")]

    def save(self, task: StudyTask, rows: list[OrderRow]) -> None:
        if self.root is None:
            return
        frame = pd.DataFrame([asdict(r) for r in rows])
        _atomic(self._task_file(task), lambda tmp: frame.to_parquet(tmp, index=False))

    def write_orders(self, table: pd.DataFrame) -> Path | None:
        if self.root is None:
            return None
        target = self.root / "orders.parquet"
        _atomic(target, lambda tmp: table.to_parquet(tmp, index=False))
        return target

    def write_result(self, text: str) -> None:
        if self.root is not None:
            _write_text(self.root / "result.json", text)

    def plot_path(self) -> Path | None:
        return None if self.root is None else self.root / "paired.png"

    def _task_file(self, task: StudyTask) -> Path:
        assert self.root is not None
        return self.root / "tasks" / f"{task.key}.parquet"


def _plain(value: dict[str, Any]) -> Any:
    """The settings as JSON reads them back (tuples become lists), for comparing with the file."""
    return json.loads(json.dumps(value, sort_keys=True))


def _write_text(path: Path, text: str) -> None:
    _atomic(path, lambda tmp: Path(tmp).write_text(text))


def _atomic(path: Path, write: Any) -> None:
    """Write through a temporary file and rename, so a crash leaves the old file or none, never half."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc}); check --out and the disk") from None
