"""CSV exports of a gallery and of a pair selection."""

from __future__ import annotations

import csv
import io


def read_csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.text)))


def test_gallery_csv_has_every_page(client, run_name):
    params = {"order": "asc", "mem_min": 0.05}
    gallery = client.get(
        f"/api/runs/{run_name}/classes/3/examples", params={**params, "per_page": 2}
    ).json()
    response = client.get(f"/api/runs/{run_name}/classes/3/examples.csv", params=params)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = read_csv(response)
    assert len(rows) == gallery["total"]
    mems = [float(row["mem"]) for row in rows]
    assert mems == sorted(mems)
    assert [int(row["index"]) for row in rows[:2]] == [e["index"] for e in gallery["examples"]]
    assert {row["class_name"] for row in rows} == {gallery["class_name"]}


def test_pairs_csv_matches_selection(client, run_name):
    params = {"mem_threshold": 0.1, "infl_threshold": 0.1}
    selection = client.get(f"/api/runs/{run_name}/pairs", params={**params, "limit": 1000}).json()
    rows = read_csv(client.get(f"/api/runs/{run_name}/pairs.csv", params=params))

    assert len(rows) == selection["summary"]["pairs"]
    assert [(int(row["train_index"]), int(row["test_index"])) for row in rows] == [
        (pair["train_index"], pair["test_index"]) for pair in selection["pairs"]
    ]
    names = {item["label"]: item["name"] for item in client.get(
        f"/api/runs/{run_name}").json()["run"]["classes"]}
    assert all(row["train_class"] == names[int(row["train_label"])] for row in rows)
    assert all(row["test_class"] == names[int(row["test_label"])] for row in rows)
