"""Runs: the list and the overview."""

from __future__ import annotations

import numpy as np

from compute.rundir import RunDir


def test_runs_list_contains_run(client, run_name):
    response = client.get("/api/runs")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["runs"][0]["name"] == run_name
    assert body["runs"][0]["trials"] == 64


def test_run_overview_histogram_counts_every_example(client, run_name, digits_run):
    estimates = RunDir(digits_run).read_estimates()
    overview = client.get(f"/api/runs/{run_name}").json()

    counted = sum(overview["mem_histogram"]["counts"])
    assert counted + overview["missing_mem"] == len(estimates["mem"])
    assert len(overview["mem_histogram"]["edges"]) == len(overview["mem_histogram"]["counts"]) + 1
    per_class = [sum(item["histogram"]["counts"]) for item in overview["class_histograms"]]
    assert sum(per_class) == counted
    expected = np.bincount(estimates["train_labels"][~np.isnan(estimates["mem"])], minlength=10)
    assert per_class == expected.tolist()


def test_run_overview_has_default_selection(client, run_name):
    overview = client.get(f"/api/runs/{run_name}").json()
    pairs = client.get(f"/api/runs/{run_name}/pairs", params={"limit": 0}).json()

    assert overview["default_selection"]["mem_threshold"] == 0.25
    assert overview["default_selection"]["infl_threshold"] == 0.15
    assert overview["default_summary"] == pairs["summary"]


def test_run_page_links_json_twin(client, run_name):
    response = client.get(f"/runs/{run_name}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert f'href="/api/runs/{run_name}"' in response.text
    assert 'rel="icon" href="/static/favicon.svg"' in response.text


def test_openapi_documents_json_routes(client):
    paths = client.get("/openapi.json").json()["paths"]

    for path in (
        "/api/runs",
        "/api/runs/{run}",
        "/api/runs/{run}/pairs",
        "/api/runs/{run}/train/{index}/influences",
        "/api/runs/{run}/test/{index}/influences",
        "/api/runs/{run}/classes/{label}/examples",
    ):
        assert path in paths
    assert not any(path.startswith("/runs") for path in paths)


def test_favicon_served(client):
    linked = client.get("/static/favicon.svg")
    default = client.get("/favicon.ico")

    assert linked.status_code == 200
    assert linked.headers["content-type"].startswith("image/svg+xml")
    assert default.status_code == 200
    assert default.content == linked.content
