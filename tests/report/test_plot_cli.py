"""`order_allocator.py --plot FILE.png` writes a picture in both modes and for both sides."""

from __future__ import annotations

import json

import pytest

import order_allocator
from tests.helpers import NS, at, frame, quote, to_csv_text, write


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("mode", ["faithful", "cont-kukanov"])
def test_plot_writes_a_png_for_each_mode_and_side(tmp_path, capsys, mode, side):
    rows = [
        quote(at("13:36:32") + i * NS // 2, (2, 5, 43)[i % 3], 222.80 + (i % 4) / 100, 300 + 10 * i)
        for i in range(60)
    ]
    path = write(tmp_path / "m.csv", to_csv_text(frame(rows)))
    png = tmp_path / "fills.png"
    args = ["--csv", str(path), "--order-size", "1000", "--mode", mode, "--side", side, "--jobs", "1"]
    args += ["--lambda-over", "0.4", "--lambda-under", "0.6", "--theta-queue", "0.3", "--plot", str(png)]
    if mode == "cont-kukanov":
        args += ["--warmup", "1", "--horizon", "5"]
    assert order_allocator.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["router"]["side"] == side and report["router"]["mode"] == mode
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
