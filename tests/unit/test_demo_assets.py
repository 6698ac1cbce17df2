"""The demo cache: built once per fingerprint, rebuilt when the inputs change or a build broke."""

from __future__ import annotations

from pathlib import Path

import pytest

from iml_tui.demo import assets


def _builder(calls: list[Path], fail: bool = False):  # type: ignore[no-untyped-def]
    def build(dst: Path) -> None:
        calls.append(dst)
        (dst / "pools").mkdir()
        (dst / "pools" / "train.h5").write_text("x")
        if fail:
            raise KeyboardInterrupt

    return build


def test_built_once_then_reused_then_rebuilt_when_the_fingerprint_changes(tmp_path: Path) -> None:
    calls: list[Path] = []
    folder = tmp_path / "birds"
    assert assets._build_once(folder, "a", _builder(calls)) == folder
    assert assets._build_once(folder, "a", _builder(calls)) == folder
    assert len(calls) == 1
    (folder / "stale.txt").write_text("left over")
    assets._build_once(folder, "b", _builder(calls))
    assert len(calls) == 2 and not (folder / "stale.txt").exists()
    assert calls == [folder, folder]  # built in place: pools keep valid paths to their clips


def test_an_interrupted_build_is_done_again(tmp_path: Path) -> None:
    calls: list[Path] = []
    folder = tmp_path / "lid"
    with pytest.raises(KeyboardInterrupt):
        assets._build_once(folder, "a", _builder(calls, fail=True))
    assert not (folder / "fingerprint.json").exists()
    assets._build_once(folder, "a", _builder(calls))
    assert len(calls) == 2 and (folder / "fingerprint.json").exists()


def test_fingerprint_follows_bytes_not_times(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.ogg").write_bytes(b"abc")
    first = assets._fingerprint(corpus)
    (corpus / "a.ogg").write_bytes(b"abc")
    assert assets._fingerprint(corpus) == first
    (corpus / "a.ogg").write_bytes(b"abd")
    assert assets._fingerprint(corpus) != first
    (corpus / "b.ogg").write_bytes(b"")
    assert len({first, assets._fingerprint(corpus)}) == 2


def test_demo_names_and_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert assets.is_demo("demo") and assets.is_demo("demo:caucasus")
    assert not assets.is_demo("demos") and not assets.is_demo("") and not assets.is_demo(None)
    assert assets.resolve_pool_dir("pools") == "pools"
    monkeypatch.setenv("IML_TUI_DEMO_CACHE", str(tmp_path / "c"))
    assert assets.cache_root() == tmp_path / "c"
    monkeypatch.delenv("IML_TUI_DEMO_CACHE")
    assert assets.cache_root() == assets.REPO / "demo_data" / ".cache"
    with pytest.raises(assets.UserError, match="no regions"):
        assets.resolve_feat_root("vtd", "demo:africa")
    with pytest.raises(assets.UserError, match="unknown demo region"):
        assets.resolve_feat_root("lid", "demo:europe")


def test_demo_folders_come_from_the_environment_then_the_checkout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("IML_TUI_DEMO_DATA", "IML_TUI_MODELS", "IML_TUI_DEMO_CACHE"):
        monkeypatch.delenv(name, raising=False)
    assert assets.demo_data_dir() == assets.REPO / "demo_data"
    assert assets.models_dir() == assets.REPO / "models"
    (tmp_path / "data").mkdir()
    (tmp_path / "enc").mkdir()
    monkeypatch.setenv("IML_TUI_DEMO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("IML_TUI_MODELS", str(tmp_path / "enc"))
    assert assets.demo_data_dir() == tmp_path / "data"
    assert assets.models_dir() == tmp_path / "enc"
    assert assets.cache_root() == tmp_path / "data" / ".cache"
    monkeypatch.setenv("IML_TUI_MODELS", str(tmp_path / "nowhere"))
    with pytest.raises(assets.UserError, match=r"\$IML_TUI_MODELS is not a folder"):
        assets.models_dir()


def test_an_installed_package_without_demo_folders_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("IML_TUI_DEMO_DATA", raising=False)
    monkeypatch.delenv("IML_TUI_MODELS", raising=False)
    monkeypatch.setattr(assets, "REPO", tmp_path)  # site-packages: no checkout around it
    with pytest.raises(assets.UserError) as err:
        assets.bird_pools()
    assert "not installed with the package" in str(err.value)
    assert "set IML_TUI_DEMO_DATA" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "data" / "birds").mkdir(parents=True)
    monkeypatch.setenv("IML_TUI_DEMO_DATA", str(tmp_path / "data"))
    with pytest.raises(assets.UserError, match="set IML_TUI_MODELS"):
        assets.bird_pools()
