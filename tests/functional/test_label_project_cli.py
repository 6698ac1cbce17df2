"""`iml-tui project new`, `export`, `import-labels` and `doctor` on a tiny project with audio."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import yaml
from labelling_data import CLASSES, FAST_TRAIN, make_audio_pool
from typer.testing import CliRunner

from iml_tui.cli import app
from iml_tui.engine.export import RAVEN_COLUMNS, current_labels, read_label_csv
from iml_tui.engine.project import Project, open_or_create
from iml_tui.engine.session import Session, answer_with_oracle
from iml_tui.errors import UserError

runner = CliRunner()


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_audio_pool(tmp_path_factory.mktemp("cli_pool"))


def _new(tmp_path: Path, pool: Path) -> Path:
    sets = [a for k, v in FAST_TRAIN.items() for a in ("--set", f"{k}={v}")]
    res = runner.invoke(
        app,
        [
            "project",
            "new",
            str(tmp_path / "proj"),
            "--pool-dir",
            str(pool),
            "--strategy",
            "ft",
            "--budgets",
            "4,8",
            "--seed",
            "3",
            *sets,
        ],
    )
    assert res.exit_code == 0, res.output
    assert "iml-tui label" in res.output
    return tmp_path / "proj"


def _rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def test_project_new_and_open_or_create(tmp_path: Path, pool: Path) -> None:
    proj = _new(tmp_path, pool)
    cfg = yaml.safe_load((proj / "project.yaml").read_text())
    assert cfg["strategy"] == "ft" and cfg["budgets"] == [4, 8] and cfg["hidden"] == 16
    assert cfg["pool_dir"] == str(pool.resolve())
    # resuming with the same or no options opens it; a different option is refused
    assert open_or_create(proj, {"strategy": "ft", "pool_dir": str(pool)}).config.seed == 3
    assert open_or_create(proj).config.budgets == [4, 8]
    with pytest.raises(UserError, match="strategy = 'ft', not 'mfft'"):
        open_or_create(proj, {"strategy": "mfft"})
    res = runner.invoke(app, ["project", "new", str(tmp_path / "p2")])
    assert res.exit_code != 0 and "pool folder" in str(res.exception)


def test_export_formats_and_reimport(tmp_path: Path, pool: Path) -> None:
    proj = _new(tmp_path, pool)
    with Session.open(proj, "ana") as s:
        answer_with_oracle(s, lambda item: [0, 2] if item.index % 2 else [], limit=4, seconds=2.0)
    labels = current_labels(Project.load(proj))
    assert len(labels) == 4
    # CSV
    res = runner.invoke(app, ["export", str(proj), "--out", str(tmp_path / "labels.csv")])
    assert res.exit_code == 0 and "4 row(s)" in res.output, res.output
    rows = _rows(tmp_path / "labels.csv")
    assert [r["id"] for r in rows] == [r.id for r in labels]
    for r in rows:
        odd = int(r["index"]) % 2 == 1
        assert r["labels"] == ("bird;insect" if odd else "")
        assert (r["bird"], r["frog"], r["insect"]) == (("1", "0", "1") if odd else ("0",) * 3)
        assert r["annotator"] == "ana" and r["seconds"] == "2.000" and r["audio"].endswith(".wav")
        assert float(r["end"]) - float(r["start"]) == 2.0
    # Raven: one selection table per audio file, one selection per class present
    res = runner.invoke(
        app, ["export", str(proj), "--format", "raven", "--out", str(tmp_path / "raven")]
    )
    assert res.exit_code == 0, res.output
    tables = sorted((tmp_path / "raven").glob("*.Table.1.selections.txt"))
    n_sel = sum(2 for r in rows if r["labels"])
    got = [row for t in tables for row in _rows(t, "\t")]
    assert len(got) == n_sel and f"{n_sel} selection(s)" in res.output
    assert list(got[0]) == list(RAVEN_COLUMNS)
    for row in got:
        assert row["View"] == "Spectrogram 1" and row["Channel"] == "1"
        assert row["Annotation"] in ("bird", "insect") and row["High Freq (Hz)"] == "4000.0"
        assert float(row["End Time (s)"]) - float(row["Begin Time (s)"]) == pytest.approx(2.0)
        assert row["Item ID"].split("@")[0] == row["Begin File"]
        assert float(row["Begin Time (s)"]) == float(row["Item ID"].split("@")[1])
    # Audacity: start<TAB>end<TAB>label per line
    res = runner.invoke(
        app,
        [
            "export",
            str(proj),
            "--format",
            "audacity",
            "--include-none",
            "--out",
            str(tmp_path / "aud"),
        ],
    )
    assert res.exit_code == 0, res.output
    lines = [
        ln.split("\t")
        for f in sorted((tmp_path / "aud").glob("*.txt"))
        for ln in f.read_text().splitlines()
    ]
    assert len(lines) == n_sel + sum(1 for r in rows if not r["labels"])
    assert all(len(ln) == 3 and float(ln[1]) > float(ln[0]) for ln in lines)
    assert {ln[2] for ln in lines} == {"bird", "insect", "none"}
    assert all(f.stem in {"rec0", "rec1", "rec2", "rec3"} for f in (tmp_path / "aud").glob("*.txt"))
    # the exported CSV warm-starts a new project
    proj2 = tmp_path / "proj2"
    Project.create(proj2, Project.load(proj).config)
    res = runner.invoke(app, ["import-labels", str(proj2), str(tmp_path / "labels.csv")])
    assert res.exit_code == 0 and "imported 4 label(s) as import:labels.csv" in res.output
    again = current_labels(Project.load(proj2))
    assert [(r.id, r.labels) for r in again] == [(r.id, r.labels) for r in labels]
    with Session.open(proj2, "bob") as s:
        assert s.progress().labelled == 4 and s.progress().round == 1
        item = s.next_item()
        assert item is not None and "farthest from what is labelled" in item.why


def test_import_checks_ids_and_classes(tmp_path: Path, pool: Path) -> None:
    proj = _new(tmp_path, pool)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,labels\nrec0.wav@0.000,bird\nnot-an-item,\n")
    res = runner.invoke(app, ["import-labels", str(proj), str(bad)])
    assert res.exit_code != 0 and "not items of this project" in str(res.exception)
    res = runner.invoke(
        app, ["import-labels", str(proj), str(bad), "--skip-unknown", "--annotator", "expert"]
    )
    assert res.exit_code == 0 and "imported 1 label(s) as expert" in res.output
    assert "skipped 1 unknown id(s)" in res.stderr
    per_class = tmp_path / "pc.csv"
    per_class.write_text("id,bird,frog,insect\nrec1.wav@0.000,0,1,1\nrec1.wav@1.000,0,0,0\n")
    assert read_label_csv(per_class, CLASSES) == [
        ("rec1.wav@0.000", [1, 2]),
        ("rec1.wav@1.000", []),
    ]
    for text, msg in (
        ("labels\nx\n", "no 'id' column"),
        ("id,labels\na,owl\n", "unknown class"),
        ("id,bird,frog,insect\na,2,0,0\n", "not 0 or 1"),
        ("id,species\na,b\n", "neither a column per class"),
    ):
        bad.write_text(text)
        with pytest.raises(UserError, match=msg):
            read_label_csv(bad, CLASSES)


def test_doctor_says_which_players_work(tmp_path: Path) -> None:
    res = runner.invoke(app, ["doctor", "--clip-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert [ln.split()[0] for ln in lines[:3]] == ["local", "browser", "file"]
    assert lines[2].split()[1] == "ok" and lines[-1].startswith("iml-tui label will use:")


def test_audio_fixture_is_real(pool: Path) -> None:
    assert sf.info(pool.parent / "audio" / "rec0.wav").samplerate == 8000


def test_a_stream_project_from_the_command_line(tmp_path: Path) -> None:
    from iml_tui.data.stream_synth import LidSynthConfig, synth_lid

    synth_lid(
        tmp_path / "feat",
        LidSynthConfig(n_train=20, n_dev=20, n_test=10, features=(("ecapalang", 8),)),
    )
    res = runner.invoke(
        app,
        [
            "project",
            "new",
            str(tmp_path / "lid"),
            "--task",
            "lid",
            "--set",
            f"stream.feat_root={tmp_path / 'feat'}",
            "--set",
            "stream.features=[ecapalang]",
            "--set",
            "stream.target=ha",
            "--set",
            "stream.samples_per_batch=20",
            "--set",
            "seed=4",
        ],
    )
    assert res.exit_code == 0, res.output
    project = Project.load(tmp_path / "lid")
    scfg = project.config.stream_config()
    assert project.mode == "stream" and scfg.target == "ha" and scfg.seed == 4
    assert scfg.feat_root == str((tmp_path / "feat").resolve())
    res = runner.invoke(
        app, ["project", "new", str(tmp_path / "bad"), "--task", "lid", "--set", "stream.nope=1"]
    )
    assert res.exit_code != 0 and "unknown key 'nope'" in str(res.exception)


def test_export_csv_never_clobbers(tmp_path: Path, pool: Path) -> None:
    proj = _new(tmp_path, pool)
    out = tmp_path / "labels.csv"
    out.write_text("precious\n")
    res = runner.invoke(app, ["export", str(proj), "--out", str(out)])
    assert isinstance(res.exception, UserError) and "--force" in str(res.exception)
    assert out.read_text() == "precious\n"
    res = runner.invoke(app, ["export", str(proj), "--out", str(tmp_path)])
    assert isinstance(res.exception, UserError) and "folder" in str(res.exception)
    res = runner.invoke(app, ["export", str(proj), "--out", str(out), "--force"])
    assert res.exit_code == 0, res.output
    assert out.read_text().startswith("id")


@pytest.mark.parametrize("damage", ["deleted", "empty", "garbage"])
def test_a_damaged_journal_is_never_a_new_project(tmp_path: Path, pool: Path, damage: str) -> None:
    proj = _new(tmp_path, pool)
    with Session.open(proj, "ana") as s:
        answer_with_oracle(s, lambda item: [0], limit=2, seconds=1.0)
    (proj / "models" / "round_001.pt").write_bytes(b"checkpoint")
    journal = proj / "journal.sqlite"
    if damage == "deleted":
        journal.unlink()
    elif damage == "empty":
        journal.write_bytes(b"")
    else:
        journal.write_bytes(b"\x00garbage\xff" * 512)
    before = journal.read_bytes() if journal.exists() else None
    with pytest.raises(UserError, match=r"journal\.sqlite: .*move the project folder away"):
        Session.open(proj, "ana")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "iml_tui",
            "export",
            str(proj),
            "--out",
            str(tmp_path / "labels.csv"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert "journal.sqlite" in proc.stderr and "Traceback" not in proc.stderr
    assert (journal.read_bytes() if journal.exists() else None) == before  # left as it was
    assert not (tmp_path / "labels.csv").exists()
