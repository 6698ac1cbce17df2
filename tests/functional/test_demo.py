"""The bundled demo: the committed corpora and models, the pools built from them by the real
pipeline on first use, and the commands that run on them with no data named."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.cli import demo as demo_cli
from iml_tui.data.store import PoolStore
from iml_tui.demo import assets
from iml_tui.errors import UserError
from iml_tui.presets import PRESETS

runner = CliRunner()
CALL_TYPES = ["Tonal_whistle", "FM_sweep", "Trill", "Buzz", "Harmonic_stack"]
QUICK_STREAM = ["--set", "max_epochs=20", "--set", "patience=3", "--threads", "1"]


def _tracked_bytes(*folders: Path) -> int:
    return sum(
        p.stat().st_size
        for f in folders
        for p in f.rglob("*")
        if p.is_file() and ".cache" not in p.parts
    )


def test_demo_data_and_models_fit_in_40_mb() -> None:
    size = _tracked_bytes(assets.demo_data_dir(), assets.models_dir())
    assert 5e6 < size < 40e6, size


def test_demo_checksums_match_the_committed_files() -> None:
    sums = (assets.demo_data_dir() / "SHA256SUMS").read_text().splitlines()
    assert len(sums) > 50
    import hashlib

    for line in sums:
        digest, name = line.split(maxsplit=1)
        path = assets.REPO / name.lstrip("*")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, name


@pytest.mark.slow
def test_bird_pools_are_built_by_prepare_and_extract() -> None:
    pools = assets.bird_pools()
    sizes = {}
    for split in ("train", "valid", "test"):
        store = PoolStore(pools / f"{split}.h5")
        assert store.class_list == CALL_TYPES
        assert (store.t, store.d) == (32, 128)
        clip = store.clip_labels()
        assert (clip.sum(axis=0) > 0).all(), (split, clip.sum(axis=0))
        assert store.attrs["encoder"] == "cnn14"
        assert np.isfinite(store.embeddings(slice(0, 8))).all()
        sizes[split] = store.n
    assert sizes["train"] > 200 and sizes["valid"] > 40 and sizes["test"] > 40
    stamp = (pools.parent / "fingerprint.json").stat().st_mtime_ns
    assert assets.bird_pools() == pools  # built once, then reused
    assert (pools.parent / "fingerprint.json").stat().st_mtime_ns == stamp


def test_simulate_bioacoustic_with_no_data_named_runs_on_the_demo(tmp_path: Path) -> None:
    out = tmp_path / "bio"
    res = runner.invoke(
        app,
        [
            "simulate",
            "--task",
            "bioacoustic",
            "--strategy",
            "mfft",
            "--start",
            "cold",
            "--budgets",
            "10,20",
            "--seeds",
            "1",
            "--jobs",
            "1",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "(--config demo_bioacoustic)" in res.stderr
    rows = list(csv.DictReader((out / "al_results.csv").open()))
    assert [int(r["num_annotated_samples"]) for r in rows] == [10, 20]
    assert all(5.0 < float(r["test_cmap_mean"]) <= 100.0 for r in rows), rows
    # the demo preset adds the fully supervised reference: 28.9 on the D.1 split
    assert float(rows[0]["full_test_cmap_mean"]) > 20.0


@pytest.mark.slow
def test_simulate_lid_dev_with_no_data_named_runs_on_the_demo(tmp_path: Path) -> None:
    out = tmp_path / "lid"
    res = runner.invoke(
        app,
        [
            "simulate",
            "--task",
            "lid",
            "--split",
            "dev",
            "--target",
            "hy",
            "--out",
            str(out),
            *QUICK_STREAM,
        ],
    )
    assert res.exit_code == 0, res.output
    assert "(--config demo_lid)" in res.stderr
    scores = list(csv.DictReader((out / "dev_hy" / "scores.csv").open()))
    assert len(scores) >= 4
    assert "pooled" in res.stdout or "dev_hy" in res.stdout


@pytest.mark.slow
def test_simulate_vtd_with_no_data_named_runs_on_the_demo(tmp_path: Path) -> None:
    out = tmp_path / "vtd"
    res = runner.invoke(
        app,
        ["simulate", "--task", "vtd", "--env", "rm1_livingroom", "--out", str(out), *QUICK_STREAM],
    )
    assert res.exit_code == 0, res.output
    assert "(--config demo_vtd)" in res.stderr
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1
    scores = list(csv.DictReader((runs[0] / "scores.csv").open()))
    assert len(scores) == 6  # one batch per session


def test_demo_without_a_terminal_runs_the_headless_study(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[object] = []
    monkeypatch.setattr(demo_cli, "run_bioacoustic", seen.append)
    res = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    (cfg,) = seen
    assert Path(cfg.pool_dir) == assets.bird_pools()  # type: ignore[attr-defined]
    assert cfg.strategy == ["rand", "ft", "mp", "mfft"]  # type: ignore[attr-defined]
    assert Path(cfg.out) == tmp_path / "bioacoustic"  # type: ignore[attr-defined]


def test_a_missing_demo_model_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "models").mkdir()
    monkeypatch.setenv("IML_TUI_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("IML_TUI_DEMO_CACHE", str(tmp_path / "cache"))
    res = runner.invoke(app, ["simulate", "--task", "bioacoustic", "--out", str(tmp_path)])
    assert isinstance(res.exception, UserError)  # main() prints it in one line, exit status 2
    message = str(res.exception)
    assert str(tmp_path / "models" / "demo-birds-cnn14.pt") in message and "rebuild.sh" in message
    assert not (tmp_path / "cache" / "birds").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="the cache lock uses fcntl")
def test_feat_root_names_resolve_to_built_demo_features() -> None:
    assert not assets.is_demo("features") and assets.is_demo("demo:africa")
    assert assets.resolve_feat_root("lid", "features") == "features"
    root = Path(assets.resolve_feat_root("lid", "demo"))
    assert sorted(p.name for p in (root / "ecapalang").iterdir()) == [
        "dev.h5",
        "test.h5",
        "train.h5",
    ]


@pytest.mark.parametrize(
    ("args", "preset"),
    [
        ([], "demo_lid.yaml"),
        (["--feat-root", "demo:africa"], "demo_lid.yaml"),
        (["--feat-root", "features"], "lid.yaml"),
        (["--config", "lid"], "lid.yaml"),
        (["--config", str(PRESETS / "lid.yaml")], "lid.yaml"),
    ],
)
def test_which_preset_a_stream_simulation_starts_from(
    monkeypatch: pytest.MonkeyPatch, args: list[str], preset: str
) -> None:
    import iml_tui.cli.stream_commands as stream_cli

    seen: list[Path | None] = []
    monkeypatch.setattr(stream_cli, "run_stream_command", lambda task, pre, *rest: seen.append(pre))
    res = runner.invoke(app, ["simulate", "--task", "lid", *args])
    assert res.exit_code == 0, res.output
    assert seen[0] is not None and seen[0].name == preset


def _readme() -> str:
    import re

    return re.sub(r"\s+", " ", (assets.REPO / "README.md").read_text(encoding="utf-8"))


def test_readme_states_the_demo_project_as_the_code_makes_it() -> None:
    import inspect

    import yaml

    text = _readme()
    default_out = inspect.signature(demo_cli.demo).parameters["out"].default
    assert f"`{default_out / 'label-birds'}`" in text  # the folder run_label gets
    assert f"`{default_out / 'bioacoustic'}`" in text
    budgets = ", ".join(str(b) for b in demo_cli.DEMO_LABEL_BUDGETS)
    assert f"rounds up to {budgets} labels" in text
    for setting in demo_cli.DEMO_LABEL_SETTINGS:
        assert f"`{setting}`" in text
    preset = yaml.safe_load((PRESETS / "demo_bioacoustic.yaml").read_text())
    assert f"budgets {', '.join(str(b) for b in preset['budgets'])}," in text
    assert f"with {preset['warm_k']} clips per class" in text
    assert f"`max_epochs` {preset['max_epochs']})" in text


@pytest.mark.slow
def test_readme_and_preset_clip_counts_match_the_demo_pools() -> None:
    import re

    pools = assets.bird_pools()
    n = {s: PoolStore(pools / f"{s}.h5").n for s in ("train", "valid", "test")}
    clip = PoolStore(pools / "train.h5").clip_labels()
    text = _readme()
    assert f"{n['train']} train, {n['valid']} valid and {n['test']} test clips" in text
    preset = (PRESETS / "demo_bioacoustic.yaml").read_text()
    assert f"train pool has {n['train']} clips" in preset and f"all {n['train']} clips" in preset
    rare = [int(clip[:, CALL_TYPES.index(c)].sum()) for c in ("FM_sweep", "Harmonic_stack")]
    assert f"rare ({rare[0]} and {rare[1]} clips)" in re.sub(r"\s*#\s*", " ", preset)
    assert f"{rare[0]} and {rare[1]} train clips" in text
    assert max(demo_cli.DEMO_LABEL_BUDGETS) <= n["train"]
