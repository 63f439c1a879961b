"""Import files in each format into run directories, and reject files that do not fit."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from compute.estimators import estimate_memorization, influence_matrix
from compute.imports import ImportFileError, import_run
from compute.rundir import RunDir, RunDirError
from tests.imports.conftest import TEST_LABELS, TRAIN_LABELS


def class_members(labels: np.ndarray, label: int) -> np.ndarray:
    return np.flatnonzero(labels == label)


def influence_file_arrays() -> dict[str, np.ndarray]:
    """The authors' per-class layout for the small dataset: one matrix per class."""
    arrays = {
        "tr_mem": np.linspace(-0.5, 1.0, len(TRAIN_LABELS)),
        "tr_labels": TRAIN_LABELS,
        "tt_labels": TEST_LABELS,
    }
    for label in range(3):
        train = class_members(TRAIN_LABELS, label)
        test = class_members(TEST_LABELS, label)
        arrays[f"tr_classidx_{label}"] = train
        arrays[f"tt_classidx_{label}"] = test
        matrix = np.arange(len(train) * len(test)).reshape(len(train), len(test)) / 100
        arrays[f"infl_matrix_class{label}"] = (matrix + label / 10).astype(np.float32)
    return arrays


def save(tmp_path, name="import.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_influence_matrix_by_class(tmp_path, small_dataset):
    arrays = influence_file_arrays()
    path = save(tmp_path, **arrays)
    run, file_format = import_run(path, small_dataset, tmp_path / "run")

    assert file_format == "influence-matrix"
    estimates = run.read_estimates()
    assert np.array_equal(estimates["mem"], arrays["tr_mem"])
    assert np.isnan(estimates["mem_se"]).all()
    assert np.isnan(estimates["in_trials"]).all()
    assert estimates["trial_test_accuracy"].shape == (0,)

    infl, infl_se = run.influence()
    # Train 3 is the second example of class 0, test 3 the second of class 0.
    assert infl[3, 3] == np.float32(0.03)
    # Train 5 is the second of class 2, test 5 the second of class 2: 0.03 + 0.2.
    assert infl[5, 5] == np.float32(0.23)
    # Pairs of different classes have no influence in this format.
    assert np.isnan(infl[0, 0])
    assert np.isnan(infl_se).all()
    assert int((~np.isnan(np.asarray(infl))).sum()) == 4 * 2 + 3 * 2 + 3 * 2

    manifest = run.read_manifest()
    assert manifest["complete"] is True
    assert manifest["config"]["trials"] == 0
    assert manifest["config"]["model"] == "external"
    assert manifest["imported"]["format"] == "influence-matrix"
    assert manifest["imported"]["influences"] == 20
    assert len(run.read_trials().trials) == 0


def test_influence_matrix_missing_class_warns(tmp_path, small_dataset, caplog):
    arrays = influence_file_arrays()
    del arrays["infl_matrix_class2"]
    path = save(tmp_path, **arrays)
    with caplog.at_level(logging.WARNING, logger="compute.imports.estimates"):
        run, _ = import_run(path, small_dataset, tmp_path / "run")

    infl, _ = run.influence()
    stored_classes = set(TRAIN_LABELS[np.flatnonzero(~np.isnan(np.asarray(infl)).all(axis=1))])
    assert stored_classes == {0, 1}
    expected = (
        f"{path} has tr_classidx_{{c}} for class(es) 2 but no infl_matrix_class{{c}}, so "
        "they get no influences; export the file again if they should have some"
    )
    assert [record.getMessage() for record in caplog.records] == [expected]


def test_influence_matrix_labels_reordered(tmp_path, small_dataset):
    arrays = influence_file_arrays()
    arrays["tr_labels"] = TRAIN_LABELS[[1, 0, *range(2, 10)]]
    path = save(tmp_path, **arrays)
    with pytest.raises(ImportFileError) as caught:
        import_run(path, small_dataset, tmp_path / "run")

    assert str(caught.value) == (
        f"{path}: tr_labels[0] is 1, but training example 0 of dataset 'small' has label 0; "
        "the file's examples are not the dataset's, or not in the same order, so its scores "
        "would land on the wrong images. Pass the dataset the file was computed on, loaded "
        "in its original order"
    )
    assert not (tmp_path / "run").exists()


def test_influence_matrix_labels_shorter(tmp_path, small_dataset):
    arrays = influence_file_arrays()
    arrays["tt_labels"] = TEST_LABELS[:5]
    path = save(tmp_path, **arrays)
    with pytest.raises(ImportFileError) as caught:
        import_run(path, small_dataset, tmp_path / "run")

    assert str(caught.value).startswith(
        f"{path}: 'tt_labels' has 5 labels, but dataset 'small' has 6 test examples (first "
        "unmatched index 5); the file's examples are not the dataset's"
    )


def test_influence_matrix_value_outside_range(tmp_path, small_dataset):
    arrays = influence_file_arrays()
    arrays["infl_matrix_class1"][2, 0] = 1.5
    path = save(tmp_path, **arrays)
    with pytest.raises(ImportFileError) as caught:
        import_run(path, small_dataset, tmp_path / "run")

    assert str(caught.value) == (
        f"{path}: infl_matrix_class1[2, 0] is 1.5, outside [-1, 1]; estimates of this kind "
        "cannot take that value, so check that the key holds what docs/import.md describes "
        "(NaN marks a missing estimate)"
    )


def test_influence_matrix_index_of_other_class(tmp_path, small_dataset):
    arrays = influence_file_arrays()
    arrays["tr_classidx_2"] = np.array([2, 5, 7])
    path = save(tmp_path, **arrays)
    with pytest.raises(ImportFileError) as caught:
        import_run(path, small_dataset, tmp_path / "run")

    assert str(caught.value) == (
        f"{path}: tr_classidx_2 lists training example 7, whose tr_labels entry is 1, not 2; "
        "the file is inconsistent, so export it again"
    )


def test_influence_matrix_index_out_of_range(tmp_path, small_dataset):
    arrays = influence_file_arrays()
    arrays["tt_classidx_0"] = np.array([1, 6])
    path = save(tmp_path, **arrays)
    with pytest.raises(ImportFileError) as caught:
        import_run(path, small_dataset, tmp_path / "run")

    assert str(caught.value) == (
        f"{path}: tt_classidx_0[1] is 6, but the dataset has 6 test examples (indices 0..5); "
        "the file was computed on another dataset, so pass the dataset it was computed on"
    )


def test_pairs_file(tmp_path, small_dataset):
    path = save(
        tmp_path,
        tr_idx=np.array([0, 0, 4]),
        tt_idx=np.array([1, 3, 2]),
        infl=np.array([0.4, 0.2, 0.9]),
        mem=np.array([0.8, 0.8, 0.3]),
    )
    run, file_format = import_run(path, small_dataset, tmp_path / "run")

    assert file_format == "influence-pairs"
    mem = run.read_estimates()["mem"]
    assert mem[0] == 0.8
    assert mem[4] == 0.3
    assert np.isnan(mem[[1, 2, 3, 5, 6, 7, 8, 9]]).all()
    infl, _ = run.influence()
    assert infl[0, 1] == np.float32(0.4)
    assert infl[4, 2] == np.float32(0.9)
    assert int((~np.isnan(np.asarray(infl))).sum()) == 3


def test_pairs_stored_without_dense_matrices(tmp_path, small_dataset):
    path = save(
        tmp_path, tr_idx=np.array([9, 0, 4]), tt_idx=np.array([1, 1, 2]),
        infl=np.array([0.5, 0.4, 0.9]), mem=np.array([0.7, 0.8, 0.3]),
    )
    run, _ = import_run(path, small_dataset, tmp_path / "run")

    assert sorted(item.name for item in run.path.iterdir()) == [
        "estimates.npz", "influence_pairs.npz", "manifest.json"
    ]
    assert run.influence_shape() == (len(TRAIN_LABELS), len(TEST_LABELS))
    blocks = list(run.iter_influence_rows(block_rows=4))
    assert [start for start, _, _ in blocks] == [0, 4, 8]
    infl = np.concatenate([block for _, block, _ in blocks])
    assert infl[9, 1] == np.float32(0.5)
    assert infl[0, 1] == np.float32(0.4)
    assert int((~np.isnan(infl)).sum()) == 3
    assert all(np.isnan(block_se).all() for _, _, block_se in blocks)


def test_pairs_file_out_of_shape_named(tmp_path, small_dataset):
    path = save(
        tmp_path, tr_idx=np.array([0]), tt_idx=np.array([1]),
        infl=np.array([0.4]), mem=np.array([0.8]),
    )
    run, _ = import_run(path, small_dataset, tmp_path / "run")
    np.savez(run.influence_pairs_path, shape=np.array([10, 1]), train_index=np.array([0]),
             test_index=np.array([1]), infl=np.array([0.4], np.float32))

    with pytest.raises(RunDirError, match=r"influence_pairs.npz is inconsistent: test_index runs from 1 to 1, outside shape \(10, 1\)"):
        list(run.iter_influence_rows())


def test_pairs_file_classes_differ(tmp_path, small_dataset):
    path = save(
        tmp_path, tr_idx=np.array([0, 1]), tt_idx=np.array([1, 1]),
        infl=np.array([0.4, 0.2]), mem=np.array([0.8, 0.5]),
    )
    with pytest.raises(ImportFileError) as caught:
        import_run(path, small_dataset, tmp_path / "run")

    assert str(caught.value) == (
        f"{path}: pair 1 joins training example 1 (class 'bee') and test example 1 (class "
        "'apple') of dataset 'small', but a high-influence pair has one class; the file's "
        "indices are not this dataset's, so pass the dataset it was computed on"
    )


def test_pairs_file_conflicting_mem(tmp_path, small_dataset):
    path = save(
        tmp_path, tr_idx=np.array([0, 0]), tt_idx=np.array([1, 3]),
        infl=np.array([0.4, 0.2]), mem=np.array([0.8, 0.7]),
    )
    with pytest.raises(ImportFileError, match=r"training example 0 has mem 0.8 in pair 0 but 0.7"):
        import_run(path, small_dataset, tmp_path / "run")


def test_pairs_file_repeated_pair(tmp_path, small_dataset):
    path = save(
        tmp_path, tr_idx=np.array([0, 0]), tt_idx=np.array([1, 1]),
        infl=np.array([0.4, 0.2]), mem=np.array([0.8, 0.8]),
    )
    with pytest.raises(ImportFileError) as caught:
        import_run(path, small_dataset, tmp_path / "run")
    assert str(caught.value) == (
        f"{path}: the pair (train 0, test 1) appears more than once; keep one influence per pair"
    )


def test_consistency_scores(tmp_path, small_dataset):
    scores = np.linspace(0, 1, 10)
    scores[3] = np.nan
    path = save(
        tmp_path, labels=TRAIN_LABELS, scores=scores,
        filenames=np.array([f"img{index}.png" for index in range(10)]),
    )
    run, file_format = import_run(path, small_dataset, tmp_path / "run")

    assert file_format == "consistency"
    estimates = run.read_estimates()
    assert np.array_equal(estimates["consistency"], scores, equal_nan=True)
    assert np.isnan(estimates["mem"]).all()
    assert run.read_manifest()["imported"] == {
        "format": "consistency",
        "file": str(path.resolve()),
        "sha256": run.read_manifest()["imported"]["sha256"],
        "scores": 9,
        "filenames": True,
    }


def test_consistency_string_labels(tmp_path, small_dataset):
    names = np.array(["apple", "bee", "cloud"])[TRAIN_LABELS]
    path = save(tmp_path, labels=names, scores=np.full(10, 0.5))
    run, _ = import_run(path, small_dataset, tmp_path / "run")
    assert np.all(run.read_estimates()["consistency"] == 0.5)

    names[7] = "apple"
    path = save(tmp_path, name="wrong.npz", labels=names, scores=np.full(10, 0.5))
    with pytest.raises(ImportFileError, match=r"labels\[7\] is 'apple', but training example 7 "
                       r"of dataset 'small' has label 'bee'"):
        import_run(path, small_dataset, tmp_path / "run2")


def test_consistency_score_above_one(tmp_path, small_dataset):
    path = save(tmp_path, labels=TRAIN_LABELS, scores=np.full(10, 2.0))
    with pytest.raises(ImportFileError, match=r"scores\[0\] is 2.0, outside \[0, 1\]"):
        import_run(path, small_dataset, tmp_path / "run")


def test_trials_computed_here(tmp_path, small_dataset):
    rng = np.random.default_rng(4)
    trials = 40
    mask = np.zeros((trials, 10), bool)
    for row in mask:
        row[rng.choice(10, 7, replace=False)] = True
    train_correct = mask | (rng.random((trials, 10)) < 0.3)
    test_correct = rng.random((trials, 6)) < 0.6
    path = save(
        tmp_path, mask=mask, train_correct=train_correct.astype(np.uint8),
        test_correct=test_correct, train_labels=TRAIN_LABELS, test_labels=TEST_LABELS,
    )
    run, file_format = import_run(path, small_dataset, tmp_path / "run")

    assert file_format == "trials"
    expected = estimate_memorization(mask, train_correct)
    estimates = run.read_estimates()
    assert np.array_equal(estimates["mem"], expected.mem, equal_nan=True)
    assert np.array_equal(estimates["consistency"], expected.consistency, equal_nan=True)
    assert np.array_equal(estimates["in_trials"], expected.in_trials)
    expected_infl, _ = influence_matrix(mask, test_correct)
    infl, _ = run.influence()
    assert np.array_equal(np.asarray(infl), expected_infl, equal_nan=True)

    manifest = run.read_manifest()
    assert manifest["config"]["trials"] == 40
    assert manifest["config"]["subset_ratio"] == 0.7
    assert manifest["imported"]["subset_size_min"] == 7
    assert np.array_equal(RunDir(run.path).read_trials().mask, mask)


def test_trials_rows_differ(tmp_path, small_dataset):
    path = save(
        tmp_path, mask=np.ones((4, 10), bool), train_correct=np.ones((3, 10), bool),
        test_correct=np.ones((4, 6), bool),
    )
    with pytest.raises(ImportFileError) as caught:
        import_run(path, small_dataset, tmp_path / "run")
    assert str(caught.value) == (
        f"{path}: 'mask' has 4 trials (rows) but 'train_correct' has 3; save one row per "
        "trial in each array"
    )


def test_trials_wrong_columns(tmp_path, small_dataset):
    path = save(
        tmp_path, mask=np.ones((4, 10), bool), train_correct=np.ones((4, 10), bool),
        test_correct=np.ones((4, 7), bool),
    )
    with pytest.raises(ImportFileError) as caught:
        import_run(path, small_dataset, tmp_path / "run")
    assert str(caught.value) == (
        f"{path}: 'test_correct' must have shape (trials, 6), one column per test example of "
        "the dataset, found shape (4, 7)"
    )


def test_unknown_keys(tmp_path, small_dataset):
    path = save(tmp_path, memorization=np.zeros(10))
    with pytest.raises(ImportFileError) as caught:
        import_run(path, small_dataset, tmp_path / "run")
    assert str(caught.value) == (
        f"{path}: keys ['memorization'] match no format; an import file must contain the "
        "keys of exactly one format (influence-matrix: tr_mem, tr_labels, tt_labels; "
        "influence-pairs: tr_idx, tt_idx, infl, mem; consistency: labels, scores; trials: "
        "mask, train_correct, test_correct)"
    )


def test_existing_out_rejected(tmp_path, small_dataset):
    path = save(tmp_path, labels=TRAIN_LABELS, scores=np.full(10, 0.5))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("keep")
    with pytest.raises(ImportFileError) as caught:
        import_run(path, small_dataset, tmp_path / "run")
    assert str(caught.value) == (
        f"{tmp_path / 'run'} already exists and is not an empty folder; an import writes "
        "a new or empty folder, so pass a new --out directory"
    )


def test_existing_finished_run_names_load(tmp_path, small_dataset):
    path = save(tmp_path, labels=TRAIN_LABELS, scores=np.full(10, 0.5))
    import_run(path, small_dataset, tmp_path / "run")
    with pytest.raises(ImportFileError) as caught:
        import_run(path, small_dataset, tmp_path / "run")
    assert str(caught.value) == (
        f"{tmp_path / 'run'} already exists and is not an empty folder; it contains a "
        "finished run, which 'longtail load' stores without importing again (longtail "
        f"load {tmp_path / 'run'} --db URL --name NAME); or pass a new --out directory"
    )


def test_npy_file_rejected(tmp_path, small_dataset):
    path = tmp_path / "scores.npz"
    with open(path, "wb") as file:
        np.save(file, np.full(10, 0.5))
    with pytest.raises(ImportFileError, match=r"is not an .npz archive \(not a zip file\)"):
        import_run(path, small_dataset, tmp_path / "run")


def test_truncated_file_rejected(tmp_path, small_dataset):
    path = save(tmp_path, labels=TRAIN_LABELS, scores=np.full(10, 0.5))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ImportFileError, match="starts as a zip archive but its end is missing"):
        import_run(path, small_dataset, tmp_path / "run")


def test_folder_rejected(tmp_path, small_dataset):
    with pytest.raises(ImportFileError, match=f"estimates file {tmp_path} is a folder"):
        import_run(tmp_path, small_dataset, tmp_path / "run")
