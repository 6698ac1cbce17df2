"""``iml-tui label --task lid|vtd``: options checked against the data before anything is
written, a failed first start leaves nothing behind, and the screen never names the answer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from stream_counts import count_checks_and_reads
from tui_fakes import FakeSession, RecordingPlayer, headless_label

from iml_tui.cli import Task, label_cmd
from iml_tui.data.stream_synth import LidSynthConfig, VtdSynthConfig, synth_lid, synth_vtd
from iml_tui.engine import stream_setup
from iml_tui.engine.journal import Journal
from iml_tui.engine.stream_setup import demo_defaults, stream_options
from iml_tui.errors import UserError
from iml_tui.presets import PRESETS
from iml_tui.tui.app import make_app
from iml_tui.tui.widgets.status import WhyLine

SMALL = [
    "stream.comp_hidden=16",
    "stream.embed_dim=8",
    "stream.class_hidden=16",
    "stream.max_epochs=5",
    "stream.patience=2",
    "stream.n_queries=2",
]


@pytest.fixture(autouse=True)
def no_demo_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the demo features takes minutes: a test that would is a failing test."""
    import iml_tui.demo.assets as assets

    def refuse(task: str, value: str, progress: Any = None) -> str:
        raise AssertionError(f"the demo {value} would be built")

    monkeypatch.setattr(stream_setup, "resolve_feat_root", refuse)
    monkeypatch.setattr(assets, "resolve_feat_root", refuse)


@pytest.fixture(scope="module")
def lid_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lid")
    synth_lid(root, LidSynthConfig(n_train=30, n_dev=40, n_test=10, features=(("ecapalang", 8),)))
    return root


@pytest.fixture(scope="module")
def vtd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vtd")
    synth_vtd(
        root,
        VtdSynthConfig(
            envs=("office", "kitchen"), sessions=2, segments=20, features=(("ecapalang", 8),)
        ),
    )
    return root


def test_lid_target_is_required_and_checked(lid_root: Path) -> None:
    with pytest.raises(UserError, match="give --target, one of ha, yo, bas"):
        stream_options("lid", {"feat_root": str(lid_root)})
    with pytest.raises(UserError, match=r"'xx' is not a language.*use one of ha, yo, bas"):
        stream_options("lid", {"feat_root": str(lid_root), "target": "xx"})


def test_batch_larger_than_the_split(lid_root: Path) -> None:
    n = 3 * 40  # 40 per language in dev
    with pytest.raises(
        UserError, match=f"--samples-per-batch 500 is larger than the {n} samples of the dev split"
    ) as err:
        stream_options(
            "lid", {"feat_root": str(lid_root), "target": "ha", "samples_per_batch": 500}
        )
    assert f"give --samples-per-batch {n} or less" in str(err.value)
    setup = stream_options("lid", {"feat_root": str(lid_root), "target": "ha"})  # 720: default
    assert setup.stream["samples_per_batch"] == n
    assert setup.notes and f"one batch of {n}" in setup.notes[0]
    setup = stream_options(
        "lid",
        {"feat_root": str(lid_root), "target": "ha", "samples_per_batch": 30, "sim_type": "fps"},
    )
    assert setup.stream["samples_per_batch"] == 30 and setup.stream["sim_type"] == "fps"
    assert not setup.notes


def test_vtd_env_checked_or_defaulted(vtd_root: Path) -> None:
    with pytest.raises(UserError, match=r"'rm9' is not an environment.*kitchen, office"):
        stream_options("vtd", {"feat_root": str(vtd_root), "env": "rm9"})
    with pytest.raises(UserError, match="--target is for --task lid"):
        stream_options("vtd", {"feat_root": str(vtd_root), "target": "ha"})
    setup = stream_options("vtd", {"feat_root": str(vtd_root)})  # rm1_mc20 is not there
    assert setup.stream["env"] == "kitchen" and "streaming kitchen" in setup.notes[0]
    assert (
        stream_options("vtd", {"feat_root": str(vtd_root), "env": "office"}).stream["env"]
        == "office"
    )


def test_demo_feature_roots_bring_the_demo_settings(
    lid_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str]] = []

    def fake_resolve(task: str, value: str, progress: Any = None) -> str:
        asked.append((task, value))
        return str(lid_root)

    monkeypatch.setattr(stream_setup, "resolve_feat_root", fake_resolve)
    preset = yaml.safe_load((PRESETS / "demo_lid.yaml").read_text())
    setup = stream_options("lid", {"feat_root": "demo:africa", "target": "yo"})
    assert asked == [("lid", "demo:africa")]
    assert setup.stream["feat_root"] == str(lid_root)
    assert setup.stream["lr"] == preset["lr"] and setup.stream["max_epochs"] == 300
    assert setup.stream["samples_per_batch"] == 96  # the demo's batch fits this split
    stream_options("lid", {"target": "yo"})  # no feat_root: the first demo region
    assert asked[-1] == ("lid", "demo:caucasus")
    assert demo_defaults("vtd")["env"] == "rm1_livingroom"
    assert demo_defaults("vtd")["features"] == ["ecapalang", "mfcc"]


def _terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)


def _label(folder: Path | None, **kw: Any) -> None:
    args: dict[str, Any] = {
        "task": Task.lid,
        "pool_dir": None,
        "strategy": None,
        "budgets": None,
        "audio_root": None,
        "annotator": "ana",
        "player": "file",
        "port": 0,
        "keys": None,
        "autoplay": False,
        "graphics": "halfblock",
        "feat_root": None,
        "target": None,
        "env": None,
        "sim_type": None,
        "samples_per_batch": None,
        "set_": list(SMALL),
    }
    args.update(kw)
    label_cmd(folder, **args)


def test_failed_start_leaves_nothing_behind(
    tmp_path: Path, lid_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _terminal(monkeypatch)
    folder = tmp_path / "proj"
    with pytest.raises(UserError, match="larger than the 120 samples"):
        _label(folder, feat_root=str(lid_root), target="ha", samples_per_batch=500)
    assert not folder.exists()  # refused before anything was written
    # a failure after the project was written (here: the stream cannot start) removes it too
    with pytest.raises(UserError, match="bootstrap split"):
        _label(folder, feat_root=str(lid_root), target="ha", set_=[*SMALL, "stream.boot_from=dev"])
    assert not folder.exists()
    folder.mkdir()  # a folder the user made stays, emptied of what the start wrote
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="bootstrap split"):
        _label(folder, feat_root=str(lid_root), target="ha", set_=[*SMALL, "stream.boot_from=dev"])
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    # the corrected command now starts, labels, and resumes
    headless_label(monkeypatch)
    _label(folder, feat_root=str(lid_root), target="ha", samples_per_batch=30, sim_type="fpstps")
    cfg = yaml.safe_load((folder / "project.yaml").read_text())
    assert cfg["task"] == "lid"
    assert cfg["stream"]["target"] == "ha" and cfg["stream"]["samples_per_batch"] == 30
    assert cfg["stream"]["sim_type"] == "fpstps"
    _label(
        folder, feat_root=str(lid_root), target="ha", samples_per_batch=30, sim_type="fpstps"
    )  # the same command resumes
    _label(folder, task=None, target="ha")  # the folder says lid; the target agrees
    with pytest.raises(UserError, match="made with stream"):
        _label(folder, feat_root=str(lid_root), target="yo", samples_per_batch=30)
    assert (folder / "project.yaml").is_file()  # an existing project is never removed


def test_stream_options_on_a_pool_task_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _terminal(monkeypatch)
    with pytest.raises(UserError, match=r"--target do.*not apply to --task bioacoustic"):
        _label(tmp_path / "p", task=Task.bioacoustic, pool_dir=tmp_path, target="ha", set_=[])
    assert not (tmp_path / "p").exists()


def test_default_folder_names_the_stream(tmp_path: Path) -> None:
    from iml_tui.tui.run import default_project_dir

    assert default_project_dir({"task": "lid", "stream": {"target": "hy"}}) == Path("label-lid-hy")
    assert default_project_dir({"task": "vtd", "stream": {}}) == Path("label-vtd-demo")
    assert default_project_dir({"task": "bioacoustic"}) == Path("label-bioacoustic-mfft")


async def test_stream_items_show_a_neutral_name() -> None:
    player = RecordingPlayer()
    session = FakeSession(every=100, mode="stream", seconds=2.0)
    app = make_app(session, player, cursor=False, audio_thread=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        for k in (1, 2):
            why = str(app.main.query_one(WhyLine).render())
            assert f"#{k} · 2.0 s" in why and "clip" not in why
            assert app.main.current is not None
            assert app.main.current.view.item_id == f"clip{k - 1:03d}"  # the real id stays
            await pilot.press("1", "enter")
    assert player.played == ["#1 · 2.0 s", "#2 · 2.0 s", "#3 · 2.0 s"]  # the page shows it
    assert [i for i, _, _ in session.answers] == [0, 1]


async def test_real_stream_session_keeps_the_real_id(tmp_path: Path, lid_root: Path) -> None:
    """Common Voice ids carry the language: the screen shows #n, the journal the id."""
    from iml_tui.engine.project import Project, ProjectConfig
    from iml_tui.engine.session import Session

    stream = {
        "feat_root": str(lid_root),
        "target": "ha",
        "samples_per_batch": 30,
        "comp_hidden": 16,
        "embed_dim": 8,
        "class_hidden": 16,
        "max_epochs": 5,
        "patience": 2,
        "n_queries": 2,
    }
    Project.create(tmp_path / "proj", ProjectConfig(task="lid", seed=1, stream=stream))
    with Session.open(tmp_path / "proj", "ana") as session:
        app = make_app(session, RecordingPlayer(), cursor=False, audio_thread=False)
        async with app.run_test(size=(100, 30)) as pilot:
            for _ in range(200):
                if app.main.current is not None:
                    break
                await app.workers.wait_for_complete()
                await pilot.pause(0.05)
            shown = app.main.current
            assert shown is not None
            real = shown.view.item_id
            assert "common_voice_" in real
            why = str(app.main.query_one(WhyLine).render())
            assert real not in why and "common_voice" not in why
            assert f"#{shown.view.index + 1}" in why
            await pilot.press("enter")
    with Journal(tmp_path / "proj" / "journal.sqlite") as journal:
        assert real in {str(e.item_id) for e in journal.current_labels().values()}


def test_label_lid_checks_once_and_reads_each_store_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking the options, creating and opening the project, starting the stream: one config
    check, one read of the streamed split and one of the bootstrap split."""
    root = tmp_path / "lid"
    synth_lid(root, LidSynthConfig(n_train=20, n_dev=40, n_test=10, features=(("ecapalang", 6),)))
    counts = count_checks_and_reads(monkeypatch)
    headless_label(monkeypatch)
    _label(tmp_path / "proj", feat_root=str(root), target="ha", samples_per_batch=30)
    assert (tmp_path / "proj" / "project.yaml").is_file()
    assert counts == {"validate": 1, "read ecapalang/dev.h5": 1, "read ecapalang/train.h5": 1}
    _label(tmp_path / "proj", task=None, target="ha")  # resuming: the project's check alone
    assert counts["validate"] == 2 and counts["read ecapalang/dev.h5"] == 1


def _project_new(*args: str) -> Any:
    from typer.testing import CliRunner

    from iml_tui.cli import app

    return CliRunner().invoke(app, ["project", "new", *args])


def test_project_new_stream_goes_through_the_label_checks(tmp_path: Path, lid_root: Path) -> None:
    # the same refusals as `label --task lid`, and nothing left behind
    folder = tmp_path / "p"
    res = _project_new(str(folder), "--task", "lid", "--feat-root", str(lid_root))
    assert isinstance(res.exception, UserError) and "give --target, one of ha, yo, bas" in str(
        res.exception
    )
    res = _project_new(str(folder), "--task", "lid", "--feat-root", str(lid_root), "--target", "xx")
    assert isinstance(res.exception, UserError) and "'xx' is not a language" in str(res.exception)
    res = _project_new(
        str(folder), "--task", "lid", "--feat-root", str(lid_root), "--target", "ha",
        "--samples-per-batch", "500",
    )  # fmt: skip
    assert isinstance(res.exception, UserError) and "larger than the 120 samples" in str(
        res.exception
    )
    assert not folder.exists()
    # a working one: the split's size is filled in with a note, as `label` does
    res = _project_new(str(folder), "--task", "lid", "--feat-root", str(lid_root), "--target", "ha")
    assert res.exit_code == 0, res.output
    assert "one batch of 120" in res.output
    stream = yaml.safe_load((folder / "project.yaml").read_text())["stream"]
    assert stream["target"] == "ha" and stream["samples_per_batch"] == 120


def test_project_new_vtd_checks_the_environment(tmp_path: Path, vtd_root: Path) -> None:
    res = _project_new(
        str(tmp_path / "v"), "--task", "vtd", "--feat-root", str(vtd_root), "--env", "rm9"
    )
    assert isinstance(res.exception, UserError) and "'rm9' is not an environment" in str(
        res.exception
    )
    assert not (tmp_path / "v").exists()
    res = _project_new(str(tmp_path / "v"), "--task", "vtd", "--feat-root", str(vtd_root))
    assert res.exit_code == 0, res.output
    assert yaml.safe_load((tmp_path / "v" / "project.yaml").read_text())["stream"]["env"] == (
        "kitchen"
    )


def test_project_new_reads_the_pool_as_label_does(tmp_path: Path) -> None:
    import h5py
    from labelling_data import make_audio_pool

    pool = make_audio_pool(tmp_path / "pool")
    with h5py.File(pool / "train.h5", "a") as f:
        f["embeddings"][0, 0, 0] = float("nan")
        del f["derived/pooled_max_l2"]  # rebuilt from the embeddings on open
    res = _project_new(str(tmp_path / "p"), "--pool-dir", str(pool))
    assert isinstance(res.exception, UserError), res.output
    assert "NaN" in str(res.exception) and "train.h5" in str(res.exception)
    assert not (tmp_path / "p").exists()
    # a valid.h5 of another embedding size is refused at creation, not at the first training
    good = make_audio_pool(tmp_path / "pool2")
    other = make_audio_pool(tmp_path / "pool3", d=4)
    (good / "valid.h5").unlink(missing_ok=True)
    (other / "train.h5").rename(good / "valid.h5")
    res = _project_new(str(tmp_path / "q"), "--pool-dir", str(good))
    assert isinstance(res.exception, UserError) and "valid.h5 has classes" in str(res.exception)
    assert not (tmp_path / "q").exists()
