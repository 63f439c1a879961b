"""One JSON error shape for every bad request, validation errors included; never a 500."""

from __future__ import annotations

import logging

import pytest

RUN = "digits"

# (path, expected status, words the message must contain)
BAD_REQUESTS = [
    ("/api/runs/missing-run", 404, ["run 'missing-run' not found", "digits"]),
    ("/api/runs/missing-run/pairs", 404, ["run 'missing-run' not found"]),
    (f"/api/runs/{RUN}/train/999999", 404, ["no train example 999999", "0..1437"]),
    (f"/api/runs/{RUN}/test/359", 404, ["no test example 359", "0..358"]),
    (f"/api/runs/{RUN}/train/-1", 422, ["index", "greater than or equal to 0"]),
    (f"/api/runs/{RUN}/train/abc/influences", 422, ["index", "valid integer", "'abc'"]),
    (f"/api/runs/{RUN}/train/0/influences?limit=-5", 422, ["limit", "'-5'"]),
    (f"/api/runs/{RUN}/test/0/influences?limit=100000", 422, ["limit", "1000"]),
    (f"/api/runs/{RUN}/train/0/influences?order=sideways", 422, ["order", "'sideways'"]),
    (f"/api/runs/{RUN}/pairs?mem_threshold=1.5", 422, ["mem_threshold", "less than or equal to 1"]),
    (f"/api/runs/{RUN}/pairs?infl_threshold=-2", 422, ["infl_threshold", "'-2'"]),
    (f"/api/runs/{RUN}/pairs?infl_threshold=nan", 422, ["infl_threshold"]),
    (f"/api/runs/{RUN}/pairs?mem_threshold=high", 422, ["mem_threshold", "valid number"]),
    (f"/api/runs/{RUN}/pairs?limit=-1", 422, ["limit", "greater than or equal to 0"]),
    (f"/api/runs/{RUN}/pairs?offset=-1", 422, ["offset"]),
    (f"/api/runs/{RUN}/pairs?offset=100000000000000000000000", 422, ["offset"]),
    (f"/api/runs/{RUN}/pairs?label=42", 422, ["no class with label 42", "0..9"]),
    (f"/api/runs/{RUN}/pairs?label=three", 422, ["labels are class indices such as 3", "'three'"]),
    (f"/api/runs/{RUN}/classes/cat/examples", 422, ["labels are class indices", "'cat'"]),
    (f"/api/runs/{RUN}/classes/3.0/examples", 422, ["labels are class indices", "'3.0'"]),
    (f"/api/runs/{RUN}/pairs?same_class=maybe", 422, ["same_class"]),
    (f"/api/runs/{RUN}/pairs.csv?label=42", 422, ["no class with label 42"]),
    (f"/api/runs/{RUN}/pairs?infl_threshold=0.01", 422,
     ["infl_threshold 0.01 is below 0.02", "infl_threshold >= 0.02", "--influence-floor"]),
    (f"/api/runs/{RUN}/pairs.csv?infl_threshold=-1", 422, ["infl_threshold -1.0 is below 0.02"]),
    (f"/api/runs/{RUN}/pairs/0/999999", 404, ["no test example 999999"]),
    (f"/api/runs/{RUN}/classes/42/examples", 404, ["no class with label 42"]),
    (f"/api/runs/{RUN}/classes/3/examples?order=random", 422, ["order", "'random'"]),
    (f"/api/runs/{RUN}/classes/3/examples?page=0", 422, ["page"]),
    (f"/api/runs/{RUN}/classes/3/examples?page=99999999999", 422, ["page"]),
    (f"/api/runs/{RUN}/classes/3/examples?page=99", 422,
     ["page 99 is past the last page, 3,", "pass a page from 1 to 3"]),
    (f"/api/runs/{RUN}/classes/3/examples?mem_min=0.5&mem_max=0.1", 422, ["mem_min 0.5", "mem_max 0.1"]),
    (f"/api/runs/{RUN}/classes/3/examples.csv?mem_min=2", 422, ["mem_min"]),
    (f"/api/runs/{RUN}/classes/3/examples?mem_max=5", 422, ["mem_max", "less than or equal to 1"]),
    (f"/api/runs/{RUN}/classes/3/examples?mem_min=abc", 422, ["mem_min", "valid number", "'abc'"]),
    (f"/api/runs/{RUN}/train/999999/image.png", 404, ["no train example 999999"]),
    (f"/api/runs/{RUN}/valid/0/image.png", 422, ["split", "'valid'"]),
    (f"/api/runs/{RUN}/train/0/image.png?scale=0", 422, ["scale"]),
    ("/api/no-such-endpoint", 404, ["/api/no-such-endpoint", "/openapi.json"]),
    (f"/api/runs/{RUN}/pairs?mem_treshold=0.5", 422,
     ["unknown query parameter(s) mem_treshold", "infl_threshold, label, limit, mem_threshold"]),
    (f"/api/runs/{RUN}?verbose=1&x=2", 422,
     ["unknown query parameter(s) verbose, x", "takes no query parameters"]),
    (f"/api/runs/{RUN}/pairs?mem_threshold=0.3&mem_threshold=0.5", 422,
     ["query parameter(s) mem_threshold given more than once"]),
]


@pytest.mark.parametrize("path, status, words", BAD_REQUESTS)
def test_error_shape_and_message(client, path, status, words):
    response = client.get(path)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "message", "detail"}
    assert body["error"]["status"] == status
    for word in words:
        assert word in body["error"]["message"]


def test_validation_error_detail_names_parameter(client):
    body = client.get(f"/api/runs/{RUN}/pairs?mem_threshold=5&limit=-1").json()

    detail = {item["parameter"]: item for item in body["error"]["detail"]}
    assert set(detail) == {"mem_threshold", "limit"}
    assert detail["mem_threshold"]["found"] == "5"
    assert detail["mem_threshold"]["location"] == "query"


def test_method_not_allowed_is_json(client):
    response = client.post(f"/api/runs/{RUN}/pairs")

    assert response.status_code == 405
    assert response.json()["error"]["message"] == (
        f"method POST is not allowed on /api/runs/{RUN}/pairs"
    )


def test_pair_not_stored_is_404(client):
    stored = client.get(f"/api/runs/{RUN}/train/0/influences", params={"limit": 1000}).json()
    kept = {item["example"]["index"] for item in stored["influences"]}
    missing = next(index for index in range(359) if index not in kept)
    response = client.get(f"/api/runs/{RUN}/pairs/0/{missing}")

    assert response.status_code == 404
    assert "stores no influence of train 0" in response.json()["error"]["message"]


def test_html_page_error_is_html(client):
    response = client.get(f"/runs/{RUN}/train/999999")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "no train example 999999" in response.text


def test_request_error_logged_with_run(client, caplog):
    with caplog.at_level(logging.WARNING, logger="backend.errors"):
        client.get(f"/api/runs/{RUN}/pairs?label=42")

    messages = [record.getMessage() for record in caplog.records]
    assert any(f"(run {RUN})" in message and "label 42" in message for message in messages)


def test_control_characters_escaped_in_log(client, caplog):
    with caplog.at_level(logging.WARNING, logger="backend.errors"):
        response = client.get("/api/runs/digits%0Aforged%00/pairs")

    messages = [record.getMessage() for record in caplog.records]
    assert response.status_code == 404
    assert any("(run digits\\nforged\\x00)" in message for message in messages)
    assert not any("\n" in message or "\x00" in message for message in messages)


def test_page_with_unknown_parameter_rejected(client):
    # A misspelt threshold in a shared link must not silently show the default view.
    response = client.get(f"/runs/{RUN}/pairs?mem_treshold=0.5")

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "unknown query parameter(s) mem_treshold" in response.text


def test_empty_label_means_every_class(client):
    blank = client.get(f"/api/runs/{RUN}/pairs?label=&limit=0")
    absent = client.get(f"/api/runs/{RUN}/pairs?limit=0")

    assert blank.status_code == 200, blank.text
    assert blank.json()["summary"] == absent.json()["summary"]


@pytest.mark.parametrize("query, words", [
    ("limit=0", "greater than or equal to 1"),
    ("limit=1001", "less than or equal to 1000"),
])
def test_example_page_limit_out_of_range(client, query, words):
    response = client.get(f"/runs/{RUN}/test/0?{query}")

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert words in response.text
