"""Examples, their top influences, and the memorization gallery."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from backend.pages.rendering import build_templates
from backend.schemas import InfluencesPublic
from compute.rundir import RunDir


@pytest.fixture(scope="module")
def estimates(digits_run):
    return RunDir(digits_run).read_estimates()


@pytest.fixture(scope="module")
def influence(digits_run):
    infl, _ = RunDir(digits_run).influence()
    return np.asarray(infl)


def test_train_example_matches_estimates(client, run_name, estimates):
    index = int(np.nanargmax(estimates["mem"]))
    example = client.get(f"/api/runs/{run_name}/train/{index}").json()

    assert example["label"] == int(estimates["train_labels"][index])
    assert example["mem"] == pytest.approx(float(estimates["mem"][index]))
    assert example["mem_se"] == pytest.approx(float(estimates["mem_se"][index]))
    assert example["consistency"] == pytest.approx(float(estimates["consistency"][index]))
    assert example["in_trials"] + example["out_trials"] == 64


def test_train_influences_are_top_of_row(client, run_name, influence):
    index = int(np.argmax(np.nanmax(influence, axis=1)))
    body = client.get(f"/api/runs/{run_name}/train/{index}/influences", params={"limit": 5}).json()

    values = [item["infl"] for item in body["influences"]]
    expected = np.sort(influence[index][~np.isnan(influence[index])])[::-1][:5]
    assert values == pytest.approx(expected.tolist(), abs=1e-6)
    assert all(item["example"]["split"] == "test" for item in body["influences"])
    assert body["influences"][0]["pair_url"].startswith(f"/runs/{run_name}/pairs/{index}/")


def test_test_influences_are_top_of_column(client, run_name, influence):
    index = int(np.argmax(np.nanmax(influence, axis=0)))
    body = client.get(f"/api/runs/{run_name}/test/{index}/influences", params={"limit": 3}).json()

    column = influence[:, index]
    expected = np.sort(column[~np.isnan(column)])[::-1][:3]
    assert [item["infl"] for item in body["influences"]] == pytest.approx(expected.tolist(), abs=1e-6)
    assert all(item["example"]["split"] == "train" for item in body["influences"])


@pytest.mark.parametrize("split", ["train", "test"])
def test_influences_lowest_first_are_most_negative(client, run_name, influence, split):
    matrix = influence if split == "train" else influence.T
    index = int(np.argmin(np.nanmin(matrix, axis=1)))
    body = client.get(
        f"/api/runs/{run_name}/{split}/{index}/influences", params={"limit": 4, "order": "asc"}
    ).json()

    line = matrix[index][~np.isnan(matrix[index])]
    values = [item["infl"] for item in body["influences"]]
    assert body["order"] == "asc"
    assert values[0] < 0
    assert values == pytest.approx(np.sort(line)[:4].tolist(), abs=1e-6)


def test_example_pages_show_negative_influences(client, run_name, influence):
    train = int(np.argmin(np.nanmin(influence, axis=1)))
    test = int(np.argmin(np.nanmin(influence, axis=0)))

    train_page = client.get(f"/runs/{run_name}/train/{train}").text
    test_page = client.get(f"/runs/{run_name}/test/{test}").text
    lowest = float(np.nanmin(influence))

    assert "Test examples it hurts most" in train_page
    assert "Training examples that hurt it most" in test_page
    assert f"infl {lowest:.3f}".replace("-", "−") in train_page


def test_example_page_limit_and_show_all_link(client, run_name, influence):
    # The training example with the most positive influences fills any short list.
    train = int(np.argmax((influence > 0).sum(axis=1)))
    exact = client.get(
        f"/api/runs/{run_name}/train/{train}/influences", params={"limit": 1000}
    ).json()["exact_count"]
    short = client.get(f"/runs/{run_name}/train/{train}", params={"limit": 3}).text
    full = client.get(f"/runs/{run_name}/train/{train}", params={"limit": exact}).text

    assert exact > 3
    assert short.split("it hurts most")[0].count('class="tile') == 3
    assert f'href="/runs/{run_name}/train/{train}?limit={exact}"' in short
    assert f"Show all {exact} ranked influences" in short
    assert "Show all" not in full
    assert full.split("it hurts most")[0].count('class="tile') == min(
        exact, int((influence[train] > 0).sum())
    )


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_influences_beyond_exact_rank_left_out(client, run_name, influence, split, order):
    """A large limit returns only the influences whose rank in the full matrix is exact."""
    matrix = influence if split == "train" else influence.T
    for index in (0, 7, 100):
        body = client.get(
            f"/api/runs/{run_name}/{split}/{index}/influences",
            params={"limit": 1000, "order": order},
        ).json()
        line = np.sort(matrix[index][~np.isnan(matrix[index])])
        truth = line[::-1] if order == "desc" else line
        values = [item["infl"] for item in body["influences"]]

        assert len(values) == body["exact_count"]
        assert len(values) >= 20
        assert values == pytest.approx(truth[: len(values)].tolist(), abs=1e-6)


@pytest.mark.parametrize("split", ["train", "test"])
def test_influences_all_stored_match_matrix(client, run_name, influence, split):
    body = client.get(f"/api/runs/{run_name}/{split}/5/influences", params={"limit": 1000}).json()

    items = body["influences"]
    others = [item["example"]["index"] for item in items]
    values = [item["infl"] for item in items]
    expected = influence[5, others] if split == "train" else influence[others, 5]
    # The loader keeps at least the 20 largest influences of every example.
    assert len(items) >= 20
    assert len(set(others)) == len(others)
    assert values == pytest.approx(expected.tolist(), abs=1e-6)
    # Highest first; equal influences go by the other example's index.
    assert [(-value, other) for value, other in zip(values, others)] == sorted(
        (-value, other) for value, other in zip(values, others)
    )


def test_influences_limit_zero_is_empty(client, run_name):
    body = client.get(f"/api/runs/{run_name}/train/0/influences", params={"limit": 0}).json()

    assert body["influences"] == []


def test_gallery_sorted_highest_first(client, run_name, estimates):
    body = client.get(f"/api/runs/{run_name}/classes/3/examples", params={"per_page": 10}).json()

    mems = [example["mem"] for example in body["examples"]]
    assert mems == sorted(mems, reverse=True)
    assert all(example["label"] == 3 for example in body["examples"])
    in_class = estimates["mem"][estimates["train_labels"] == 3]
    assert mems[0] == pytest.approx(float(np.nanmax(in_class)))
    assert body["total"] == int((~np.isnan(in_class)).sum())


def test_gallery_sorted_lowest_first(client, run_name):
    body = client.get(
        f"/api/runs/{run_name}/classes/3/examples", params={"order": "asc", "per_page": 10}
    ).json()

    mems = [example["mem"] for example in body["examples"]]
    assert mems == sorted(mems)


def test_gallery_sorted_by_consistency(client, run_name, estimates):
    params = {"sort": "consistency", "order": "asc", "per_page": 500}
    body = client.get(f"/api/runs/{run_name}/classes/3/examples", params=params).json()
    csv_text = client.get(
        f"/api/runs/{run_name}/classes/3/examples.csv", params={"sort": "consistency", "order": "asc"}
    ).text
    page = client.get(f"/runs/{run_name}/classes/3", params=params).text

    scores = [example["consistency"] for example in body["examples"]]
    in_class = estimates["consistency"][estimates["train_labels"] == 3]
    assert body["sort"] == "consistency"
    assert scores == sorted(scores)
    assert scores[0] == pytest.approx(float(np.nanmin(in_class)))
    assert body["total"] == int((~np.isnan(in_class)).sum())
    assert body["missing"] == int(np.isnan(in_class).sum())
    rows = csv_text.splitlines()[1:]
    assert [int(row.split(",")[0]) for row in rows] == [e["index"] for e in body["examples"]]
    assert '<option value="consistency" selected>' in page


def test_gallery_unknown_sort_rejected(client, run_name):
    response = client.get(f"/api/runs/{run_name}/classes/3/examples", params={"sort": "infl"})

    assert response.status_code == 422
    assert "infl" in response.text


def test_gallery_range_filter_and_pages(client, run_name, estimates):
    params = {"mem_min": 0.1, "mem_max": 0.9, "per_page": 3}
    first = client.get(f"/api/runs/{run_name}/classes/3/examples", params=params).json()
    second = client.get(
        f"/api/runs/{run_name}/classes/3/examples", params={**params, "page": 2}
    ).json()

    in_class = estimates["mem"][estimates["train_labels"] == 3]
    assert first["total"] == int(((in_class >= 0.1) & (in_class <= 0.9)).sum())
    assert first["pages"] == -(-first["total"] // 3)
    shown = [example["mem"] for example in first["examples"] + second["examples"]]
    assert all(0.1 <= mem <= 0.9 for mem in shown)
    assert shown == sorted(shown, reverse=True)
    assert {e["index"] for e in first["examples"]}.isdisjoint(e["index"] for e in second["examples"])


def test_gallery_empty_bounds_mean_none(client, run_name, estimates):
    """The gallery form sends a blank field as `mem_max=`, which means no bound."""
    in_class = estimates["mem"][estimates["train_labels"] == 3]
    base = f"/runs/{run_name}/classes/3"

    both_blank = client.get(f"/api{base}/examples?order=desc&mem_min=&mem_max=&per_page=60")
    one_blank = client.get(f"/api{base}/examples?mem_min=0.3&mem_max=")
    page = client.get(f"{base}?order=desc&mem_min=&mem_max=&per_page=60")

    assert both_blank.status_code == 200, both_blank.text
    assert both_blank.json()["total"] == int((~np.isnan(in_class)).sum())
    assert one_blank.status_code == 200, one_blank.text
    assert one_blank.json()["total"] == int((in_class >= 0.3).sum())
    assert page.status_code == 200


@pytest.mark.parametrize(
    "split, template, message",
    [
        ("test", "test_example.html", "No training example has a positive influence on it"),
        ("train", "train_example.html", "It has no positive influence on any test example"),
    ],
)
def test_example_page_ranks_only_positive_influences(client, run_name, split, template, message):
    """Where no stored influence is positive, the page shows a message instead of ranking zeros."""
    stored = client.get(f"/api/runs/{run_name}/{split}/0/influences?limit=12").json()
    templates = build_templates()

    def page(influences: list[float]) -> str:
        items = [{**item, "infl": infl} for item, infl in zip(stored["influences"], influences)]
        data = InfluencesPublic.model_validate({**stored, "influences": items})
        return templates.get_template(template).render(
            data=data, data_json="{}", json_url=None, run=SimpleNamespace(name=run_name),
        )

    count = len(stored["influences"])
    flat = page([0.0] * (count - 1) + [-0.01])
    mixed = page([0.2] + [0.0] * (count - 1))

    assert count > 1
    assert message in flat
    assert 'class="tile"' not in flat
    assert message not in mixed
    assert mixed.count('class="tile"') == 1


def test_example_pages_render(client, run_name):
    for path in (f"/runs/{run_name}/train/0", f"/runs/{run_name}/test/0",
                 f"/runs/{run_name}/classes/0?order=asc&mem_min=0&page=2&per_page=5"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "<h1>" in response.text


def test_gallery_heading_names_class_once(client, run_name):
    # Digits' class names are their labels, so "label 3" would repeat "3".
    page = client.get(f"/runs/{run_name}/classes/3").text
    overview = client.get(f"/runs/{run_name}").text

    assert "<h1>Class 3</h1>" in page
    assert "label 3" not in page
    assert "label 3 ·" not in overview
