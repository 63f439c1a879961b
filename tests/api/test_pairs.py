"""High-influence pairs: selection summary against the run's own matrices, pages, permalink."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from backend.store.database import open_database
from backend.store.load import load_run
from compute.rundir import RunDir
from tests.explorer_fixtures import serve_in_thread


@pytest.fixture(scope="module")
def matrices(digits_run):
    run_dir = RunDir(digits_run)
    estimates = run_dir.read_estimates()
    infl, infl_se = run_dir.influence()
    return estimates, np.asarray(infl), np.asarray(infl_se)


def expected_summary(matrices, mem_threshold, infl_threshold, label=None, same_class=True):
    """Select pairs from the full matrices, as the definition states it."""
    estimates, infl, infl_se = matrices
    train_labels, test_labels = estimates["train_labels"], estimates["test_labels"]
    selected = (infl >= infl_threshold) & (estimates["mem"] >= mem_threshold)[:, None]
    if same_class:
        selected &= train_labels[:, None] == test_labels[None, :]
    if label is not None:
        selected &= (train_labels == label)[:, None]
    per_test = selected.sum(axis=0)
    return {
        "pairs": int(selected.sum()),
        "test_examples": int((per_test > 0).sum()),
        "train_examples": int(selected.any(axis=1).sum()),
        "single_train_test_examples": int((per_test == 1).sum()),
        "pairs_with_se": int((selected & ~np.isnan(infl_se)).sum()),
        "pairs_above_two_se": int((selected & (infl > 2 * infl_se)).sum()),
    }


@pytest.mark.parametrize("mem_threshold, infl_threshold, label, same_class", [
    (0.25, 0.15, None, True),
    (0.1, 0.05, None, True),
    (0.0, 0.1, None, False),
    (0.25, 0.15, 4, True),
    (0.9, 0.9, None, True),
])
def test_pairs_summary_matches_matrices(
    client, run_name, matrices, mem_threshold, infl_threshold, label, same_class
):
    params = {"mem_threshold": mem_threshold, "infl_threshold": infl_threshold,
              "same_class": same_class, "limit": 0}
    if label is not None:
        params["label"] = label
    body = client.get(f"/api/runs/{run_name}/pairs", params=params).json()

    assert body["summary"] == expected_summary(
        matrices, mem_threshold, infl_threshold, label, same_class
    )
    assert sum(body["histogram"]["counts"]) == body["summary"]["pairs"]
    assert body["histogram"]["edges"][0] == pytest.approx(infl_threshold)


def test_pairs_sorted_and_filtered(client, run_name):
    body = client.get(f"/api/runs/{run_name}/pairs", params={"limit": 20}).json()

    values = [pair["infl"] for pair in body["pairs"]]
    assert values == sorted(values, reverse=True)
    for pair in body["pairs"]:
        assert pair["infl"] >= 0.15
        assert pair["train_mem"] >= 0.25
        assert pair["train_label"] == pair["test_label"]


def test_pairs_offset_pages_through_selection(client, run_name):
    params = {"mem_threshold": 0.1, "infl_threshold": 0.1}
    everything = client.get(f"/api/runs/{run_name}/pairs", params={**params, "limit": 1000}).json()
    pages = [
        client.get(f"/api/runs/{run_name}/pairs", params={**params, "limit": 7, "offset": start})
        .json()["pairs"]
        for start in range(0, everything["summary"]["pairs"], 7)
    ]

    paged = [(pair["train_index"], pair["test_index"]) for page in pages for pair in page]
    whole = [(pair["train_index"], pair["test_index"]) for pair in everything["pairs"]]
    assert paged == whole
    assert len(whole) == everything["summary"]["pairs"]


def test_pairs_offset_past_end_is_empty(client, run_name):
    body = client.get(f"/api/runs/{run_name}/pairs", params={"offset": 100000}).json()

    assert body["pairs"] == []
    assert body["summary"]["pairs"] > 0


def test_pair_detail_of_top_pair(client, run_name):
    top = client.get(f"/api/runs/{run_name}/pairs", params={"limit": 1}).json()["pairs"][0]
    detail = client.get(
        f"/api/runs/{run_name}/pairs/{top['train_index']}/{top['test_index']}"
    ).json()

    assert detail["infl"] == pytest.approx(top["infl"])
    assert detail["train"]["index"] == top["train_index"]
    assert detail["test"]["index"] == top["test_index"]
    assert detail["selected_by_default"] is True


def test_pair_page_renders(client, run_name):
    top = client.get(f"/api/runs/{run_name}/pairs", params={"limit": 1}).json()["pairs"][0]
    response = client.get(top["pair_url"])

    assert response.status_code == 200
    assert f"test example {top['test_index']}" in response.text


def test_pairs_page_carries_state(client, run_name):
    response = client.get(
        f"/runs/{run_name}/pairs", params={"mem_threshold": 0.4, "infl_threshold": 0.2, "label": 3}
    )

    assert response.status_code == 200
    assert 'id="mem-threshold" name="mem_threshold" min="-1" max="1" step="0.01"\n' \
           '             value="0.4"' in response.text
    assert '<option value="3" selected>' in response.text


def test_threshold_compared_in_float32(client, run_name, matrices):
    # A threshold a quarter float32 step above a stored influence still rounds to it
    # in float32, as 0.02 does to the stored 1/50. That influence is selected, as the
    # load, which compares in float32, kept it.
    _, infl, _ = matrices
    value = np.sort(infl[infl >= 0.1])[0]
    threshold = float(value) + float(np.spacing(value)) / 4
    params = {"mem_threshold": -1, "infl_threshold": threshold, "same_class": False, "limit": 0}
    body = client.get(f"/api/runs/{run_name}/pairs", params=params).json()

    assert np.float32(threshold) == value
    assert threshold > float(value)
    assert body["summary"] == expected_summary(matrices, -1, threshold, same_class=False)
    assert body["summary"]["pairs"] == int((infl >= value).sum())


@pytest.fixture(scope="module")
def high_floor_server(digits_run, tmp_path_factory):
    """A server on a SQLite database whose digits run keeps influences from 0.3 up."""
    url = f"sqlite:///{tmp_path_factory.mktemp('floor') / 'floor.db'}"
    engine = open_database(url)
    try:
        load_run(engine, digits_run, name="high-floor", influence_floor=0.3)
    finally:
        engine.dispose()
    with serve_in_thread(url) as server:
        yield server


def test_default_selection_starts_at_high_floor(high_floor_server, matrices):
    with httpx.Client(base_url=high_floor_server, timeout=30) as http:
        pairs = http.get("/api/runs/high-floor/pairs", params={"limit": 0})
        overview = http.get("/api/runs/high-floor").json()
        page = http.get("/runs/high-floor/pairs")

    assert pairs.status_code == 200
    assert pairs.json()["summary"] == expected_summary(matrices, 0.25, 0.3)
    assert overview["default_selection"]["infl_threshold"] == 0.3
    assert overview["default_summary"] == pairs.json()["summary"]
    assert page.status_code == 200
