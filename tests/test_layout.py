"""The layout shows the pipeline: each stage imports only the stages before it (an AST scan, no imports).

data → snapshots → allocation → execution → baselines → search → report → pipeline → stream, then the study and
the Kafka and broker edges. `config` sits between allocation and execution: it builds the simulator's
models from `execution.models`, which imports nothing of the package. Entry points (`cli/`, `api.py`,
`__main__.py`, `synth/cli.py`, the package `__init__`) may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "allocator"
STAGES = [
    "errors",
    "data",
    "snapshots",
    "allocation",
    "execution.models",
    "config",
    "execution",
    "baselines",
    "search",
    "report",
    "pipeline",
    "stream",
    "progress",
    "synth",
    "study",
    "kafka",
    "broker",
]
ENTRY_POINTS = {"cli", "api", "__init__", "__main__", "synth.cli"}


def stage_of(module: str) -> str | None:
    """The stage a dotted module path (without 'allocator.') belongs to; None for an entry point."""
    parts = module.split(".")
    if parts[0] in ENTRY_POINTS or parts[-1] == "__main__" or ".".join(parts[:2]) in ENTRY_POINTS:
        return None
    if ".".join(parts[:2]) in STAGES:
        return ".".join(parts[:2])
    assert parts[0] in STAGES, f"allocator.{module} is in no stage: add it to STAGES or ENTRY_POINTS"
    return parts[0]


def imports_of(path: Path) -> set[str]:
    """The allocator modules a file imports (without the 'allocator.' prefix)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        found |= {name.removeprefix("allocator.") for name in names if name.startswith("allocator.")}
    return found


def test_every_stage_imports_only_earlier_stages() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        source = stage_of(module)
        if source is None:
            continue
        for target in imports_of(path):
            stage = stage_of(target)
            if stage is not None and stage != source and STAGES.index(stage) > STAGES.index(source):
                wrong.append(f"allocator.{module} ({source}) imports allocator.{target} ({stage})")
    assert not wrong, "\n".join(wrong)


def test_the_scan_sees_a_backward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from allocator.report.build import build_report\nimport allocator.kafka.codec\n")
    assert imports_of(bad) == {"report.build", "kafka.codec"}
    assert STAGES.index(stage_of("report.build") or "") > STAGES.index("snapshots")
