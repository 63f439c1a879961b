"""Dataset specs with options, and run directories that reload their dataset from one."""

from __future__ import annotations

from pathlib import Path

import pytest

from compute.config import TrialConfig
from compute.datasets import DatasetError, load_dataset, parse_spec, with_options
from compute.rundir import RunDir
from tests.format_files import write_image_folder


def test_spec_parse_options():
    parsed = parse_spec("folder:/data/pets?skip_bad_files=1&size=32x32")
    assert parsed.prefix == "folder"
    assert parsed.path == "/data/pets"
    assert parsed.options == {"skip_bad_files": "1", "size": "32x32"}
    assert str(parsed) == "folder:/data/pets?size=32x32&skip_bad_files=1"


def test_spec_builtin_has_no_path():
    parsed = parse_spec("digits")
    assert parsed.prefix == "digits"
    assert parsed.path == ""


def test_spec_with_options_appends():
    assert with_options("npz:/a.npz", layout="nchw") == "npz:/a.npz?layout=nchw"
    assert with_options("folder:/d?seed=2", skip_bad_files="1") == (
        "folder:/d?seed=2&skip_bad_files=1"
    )
    assert with_options("folder:/d?skip_bad_files=1", skip_bad_files="1") == (
        "folder:/d?skip_bad_files=1"
    )


def test_spec_with_options_conflict():
    with pytest.raises(DatasetError) as caught:
        with_options("npz:/a.npz?layout=nhwc", layout="nchw")
    assert str(caught.value) == (
        "dataset spec 'npz:/a.npz?layout=nhwc' sets layout=nhwc, but the command line asks "
        "for layout=nchw; give the option in one place"
    )


def test_spec_options_on_builtin():
    with pytest.raises(DatasetError) as caught:
        with_options("digits", layout="nchw")
    assert str(caught.value) == (
        "dataset 'digits' is built in and takes no options (requested: layout); options "
        "apply to PREFIX:PATH datasets such as folder:DIR or npz:PATH"
    )


def test_spec_option_not_key_value():
    with pytest.raises(DatasetError) as caught:
        load_dataset("folder:/d?skip_bad_files")
    assert str(caught.value) == (
        "dataset spec 'folder:/d?skip_bad_files': option 'skip_bad_files' is not KEY=VALUE; "
        "separate options with '&', as in folder:DIR?skip_bad_files=1&seed=3"
    )


def test_spec_missing_path():
    with pytest.raises(DatasetError) as caught:
        load_dataset("mnist:")
    assert str(caught.value) == "dataset spec 'mnist:' is missing a path; expected mnist:DIR"


def test_spec_unknown_prefix_lists_formats():
    with pytest.raises(DatasetError) as caught:
        load_dataset("imagenet:/data")
    assert str(caught.value) == (
        "unknown dataset 'imagenet:/data'; expected one of digits, mnist5k, cifar10:DIR, "
        "cifar100:DIR, folder:DIR, mnist:DIR, npz:PATH"
    )


def test_spec_not_a_string():
    with pytest.raises(TypeError, match="dataset spec must be a str, found PosixPath"):
        load_dataset(Path("/data"))


def test_rundir_reloads_with_spec_options(tmp_path):
    folder = tmp_path / "pets"
    write_image_folder(folder / "train", {"cat": 4, "dog": 4})
    write_image_folder(folder / "test", {"cat": 2, "dog": 2})
    (folder / "train" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    spec = f"folder:{folder}?skip_bad_files=1"
    dataset = load_dataset(spec)

    run = RunDir(tmp_path / "run")
    run.start(TrialConfig(dataset=spec, trials=4), dataset, execution={})
    manifest = run.read_manifest()
    assert manifest["config"]["dataset"] == spec
    assert manifest["dataset"]["source"]["skipped_files"] == [
        {"file": "train/dog/broken.png", "error": "not an image format that Pillow can read"}
    ]
    assert run.load_dataset().fingerprint() == dataset.fingerprint()
