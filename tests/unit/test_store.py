from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from iml_tui.data.store import POOLED_KEY, ExtraDataset, PoolStore, PoolWriter, write_pool
from iml_tui.errors import UserError


def test_roundtrip_and_pooled(tiny_pool: tuple[Path, np.ndarray, np.ndarray]) -> None:
    path, emb, lab = tiny_pool
    store = PoolStore(path)
    assert (store.n, store.t, store.d, store.c) == (*emb.shape, lab.shape[2])
    assert store.class_list == ["class0", "class1", "class2"]
    assert store.ids[3] == "clip3"
    np.testing.assert_array_equal(store.frame_labels(), lab)
    np.testing.assert_array_equal(store.clip_labels(), lab.max(axis=1))
    rows = np.array([7, 2, 7, 0])
    np.testing.assert_array_equal(store.clip_labels(rows), lab[rows].max(axis=1))
    pooled = emb.max(axis=1)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    np.testing.assert_allclose(store.pooled(), pooled, rtol=1e-6)
    idx = np.array([5, 1, 5, 30])
    np.testing.assert_array_equal(store.embeddings(idx), emb[idx])


def test_pooled_computed_once_when_absent(tiny_pool: tuple[Path, np.ndarray, np.ndarray]) -> None:
    path, _emb, _ = tiny_pool
    with h5py.File(path, "a") as f:
        del f[POOLED_KEY]
    first = PoolStore(path).pooled()
    with h5py.File(path, "r") as f:
        assert POOLED_KEY in f
        np.testing.assert_array_equal(f[POOLED_KEY][()], first)
    # with the cache present, the (N, T, D) array is never read
    with h5py.File(path, "a") as f:
        f["embeddings"][...] = np.nan
    np.testing.assert_array_equal(PoolStore(path).pooled(), first)


def test_block_writer_matches_whole_write(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(25, 3, 5)).astype(np.float32)
    lab = (rng.random((25, 3, 2)) < 0.3).astype(np.uint8)
    ids = [f"c{i}" for i in range(25)]
    w = PoolWriter(tmp_path / "blocks.h5", 25, 3, 5, ["a", "b"])
    for s in range(0, 25, 10):
        w.write_block(s, emb[s : s + 10], lab[s : s + 10], ids[s : s + 10])
    assert not (tmp_path / "blocks.h5").exists()  # published only on close
    w.close()
    write_pool(tmp_path / "whole.h5", emb, lab, ["a", "b"], ids)
    a, b = PoolStore(tmp_path / "blocks.h5"), PoolStore(tmp_path / "whole.h5")
    np.testing.assert_array_equal(a.pooled(), b.pooled())
    np.testing.assert_array_equal(a.embeddings(), b.embeddings())
    assert a.ids == b.ids


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda f: f.__delitem__("labels"), "'labels' is missing"),
        (lambda f: f.__delitem__("ids"), "'ids' is missing"),
        (
            lambda f: (
                f.__delitem__("labels"),
                f.create_dataset("labels", data=np.zeros((40, 4, 2), "u1")),
            ),
            "dataset 'labels' has shape",
        ),
        (
            lambda f: (
                f.__delitem__("embeddings"),
                f.create_dataset("embeddings", data=np.zeros((40, 8), "f4")),
            ),
            "dataset 'embeddings' has shape",
        ),
        (
            lambda f: (
                f.__delitem__(POOLED_KEY),
                f.create_dataset(POOLED_KEY, data=np.zeros((3, 8), "f4")),
            ),
            POOLED_KEY,
        ),
    ],
)
def test_bad_files_are_refused_naming_file_and_dataset(
    tiny_pool: tuple[Path, np.ndarray, np.ndarray], mutate: object, needle: str
) -> None:
    path, _, _ = tiny_pool
    with h5py.File(path, "a") as f:
        mutate(f)  # type: ignore[operator]
    with pytest.raises(UserError) as err:
        PoolStore(path)
    assert str(path) in str(err.value)
    assert needle in str(err.value)


def test_nan_embeddings_refused_when_pooling(
    tiny_pool: tuple[Path, np.ndarray, np.ndarray],
) -> None:
    path, _, _ = tiny_pool
    with h5py.File(path, "a") as f:
        del f[POOLED_KEY]
        f["embeddings"][7, 1, 2] = np.nan
    with pytest.raises(UserError, match="embeddings") as err:
        PoolStore(path).pooled()
    assert str(path) in str(err.value)


def test_not_hdf5_and_missing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    with pytest.raises(UserError, match="not a readable HDF5"):
        PoolStore(bad)
    with pytest.raises(UserError, match="not found"):
        PoolStore(tmp_path / "missing.h5")


def test_non_binary_labels_refused(tiny_pool: tuple[Path, np.ndarray, np.ndarray]) -> None:
    path, _, _ = tiny_pool
    with h5py.File(path, "a") as f:
        f["labels"][0, 0, 0] = 3
    with pytest.raises(UserError, match="other than 0 and 1"):
        PoolStore(path).frame_labels()


def test_fractional_labels_refused(tiny_pool: tuple[Path, np.ndarray, np.ndarray]) -> None:
    path, _, _ = tiny_pool
    with h5py.File(path, "a") as f:
        lab = f["labels"][()].astype(np.float32)
        lab[1, 0, 0] = 0.5
        del f["labels"]
        f["labels"] = lab
    with pytest.raises(UserError, match=r"other than 0 and 1 \(e\.g\. 0\.5 in row 1\)"):
        PoolStore(path).frame_labels()


def test_pooled_scan_can_be_skipped_only_explicitly(
    tiny_pool: tuple[Path, np.ndarray, np.ndarray],
) -> None:
    path, _, _ = tiny_pool
    PoolStore(path).pooled()
    with h5py.File(path, "a") as f:
        f[POOLED_KEY][3, 1] = np.inf
    store = PoolStore(path)
    assert not np.isfinite(store.pooled(scan=False)[3]).all()  # trusted: not scanned
    with pytest.raises(UserError, match="row 3") as err:
        store.pooled()  # a later call that asks for the scan still gets it
    assert str(path) in str(err.value)
    with pytest.raises(UserError, match="NaN or inf"):
        PoolStore(path).pooled()


def test_extra_datasets_round_trip_and_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((3, 2, 4)).astype(np.float32)
    logits = rng.standard_normal((3, 2, 5)).astype(np.float32)
    spec = ExtraDataset("scores", (2, 5), "float16", ("a", "b", "c", "d", "e"), "test scores")
    w = PoolWriter(tmp_path / "p.h5", 3, 2, 4, ["x"], extras=[spec])
    with pytest.raises(ValueError, match="expected extras"):
        w.write_block(0, emb, np.zeros((3, 2, 1)), ["0", "1", "2"])
    with pytest.raises(ValueError, match="has shape"):
        w.write_block(0, emb, np.zeros((3, 2, 1)), ["0", "1", "2"], {"scores": logits[:, :1]})
    w.write_block(0, emb[:2], np.zeros((2, 2, 1)), ["0", "1"], {"scores": logits[:2]})
    w.write_block(2, emb[2:], np.zeros((1, 2, 1)), ["2"], {"scores": logits[2:]})
    w.close()
    store = PoolStore(tmp_path / "p.h5")
    assert store.extra_names == ["scores"]
    got = store.extra("scores")
    assert got.dtype == np.float16 and got.shape == (3, 2, 5)
    np.testing.assert_allclose(got, logits, atol=2e-3)
    np.testing.assert_array_equal(store.extra("scores", np.array([2, 0, 2])), got[[2, 0, 2]])
    np.testing.assert_array_equal(store.extra("scores", slice(1, 3)), got[1:])
    assert store.extra_axis_names("scores") == ["a", "b", "c", "d", "e"]
    with h5py.File(tmp_path / "p.h5") as f:
        assert f["extra/scores"].attrs["doc"] == "test scores"
    with pytest.raises(UserError, match="no extra output 'logits'"):
        store.extra("logits")
    assert PoolStore(tmp_path / "p.h5").embeddings().shape == (3, 2, 4)
