"""Study paths: files by glob (once each, in order, errors naming the pattern), synthetic paths cached by seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocator.errors import SettingError, UserError
from allocator.study import paths as study_paths
from allocator.study.paths import SyntheticSource, file_sources, load_path, synthetic_sources


def test_globs_expand_sorted_once_each_in_the_order_given(tmp_path: Path):
    for name in ("b.csv", "a.csv", "c.dbn"):
        (tmp_path / name).write_text("x")
    sources = file_sources([str(tmp_path / "c.dbn"), str(tmp_path / "*.csv"), str(tmp_path / "a.csv")])
    assert [Path(s.label).name for s in sources] == ["c.dbn", "a.csv", "b.csv"]
    assert all(Path(s.path).is_absolute() for s in sources)


def test_an_empty_glob_a_missing_file_and_a_directory_are_one_line_errors(tmp_path: Path):
    with pytest.raises(UserError, match=r"\*\.csv: no file matches this pattern"):
        file_sources([str(tmp_path / "*.csv")])
    with pytest.raises(UserError, match=r"nope\.csv: no such data file"):
        file_sources([str(tmp_path / "nope.csv")])
    with pytest.raises(UserError, match="is a directory; give data files or a glob"):
        file_sources([str(tmp_path)])


def test_synthetic_settings_are_checked_and_named():
    with pytest.raises(SettingError) as info:
        synthetic_sources(2, 1, 0.0, "/tmp")
    assert "{minutes}" in info.value.template and info.value.settings == {"minutes": "path_minutes"}
    sources = synthetic_sources(3, 7, 2.5, "rel/cache")
    assert [s.seed for s in sources] == [7, 8, 9] and Path(sources[0].cache_dir).is_absolute()
    assert (sources[0].start, sources[0].end) == ("13:35:00", "13:37:30")


def test_each_seed_draws_its_own_trend_and_the_cache_names_seed_span_and_generator():
    a, b = SyntheticSource(1, 2.0, "/c"), SyntheticSource(2, 2.0, "/c")
    assert a.trend_rise_ticks != b.trend_rise_ticks
    assert a.cache_file() != b.cache_file() != SyntheticSource(1, 3.0, "/c").cache_file()
    assert study_paths.generator_version()[:12] in a.cache_file().name


@pytest.mark.slow
def test_a_synthetic_path_is_generated_once_and_then_read_from_its_cache(tmp_path: Path, monkeypatch):
    calls = []
    real = study_paths.generate

    def counting(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(study_paths, "generate", counting)
    source = SyntheticSource(5, 0.5, str(tmp_path))
    first = source.ensure_file()
    assert source.ensure_file() == first and len(calls) == 1
    assert calls[0]["trend_rise_ticks"] == source.trend_rise_ticks
    assert not list(tmp_path.glob(".part-*"))  # written through a temporary file, renamed whole
    data = load_path(source)
    assert len(data.frame) > 1000 and data.levels == 10
