"""The pairs page in a real browser: live sliders, a URL that follows them, permalinks."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect


def set_slider(page, selector: str, value: float) -> None:
    # Assigning the value and firing "input" is what a drag does, one step at a time.
    page.eval_on_selector(
        selector,
        "(slider, value) => { slider.value = value; slider.dispatchEvent(new Event('input')); }",
        str(value),
    )


def summary_text(page) -> str:
    return page.locator("#summary").inner_text()


def test_slider_updates_summary_and_url(page, run_name):
    page.goto(f"/runs/{run_name}/pairs")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    default_pairs = page.locator("#summary-pairs").inner_text()
    assert default_pairs != "–"

    with page.expect_response(lambda response: "/api/runs/" in response.url):
        set_slider(page, "#infl-threshold", 0.05)
    expect(page.locator("#summary-pairs")).not_to_have_text(default_pairs)

    query = parse_qs(urlparse(page.url).query)
    assert query["infl_threshold"] == ["0.05"]
    assert query["mem_threshold"] == ["0.25"]
    assert page.locator("#infl-value").inner_text() == "0.05"
    assert page.locator("#pairs-list .pair").count() > 0

    shown = summary_text(page)
    first_pair = page.locator("#pairs-list .pair").first.get_attribute("href")
    page.reload()
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    assert page.locator("#infl-threshold").input_value() == "0.05"
    assert summary_text(page) == shown
    assert page.locator("#pairs-list .pair").first.get_attribute("href") == first_pair


def test_link_threshold_kept_between_steps(page, run_name):
    # 0.155 lies between the slider's steps; the view must keep it, not round it.
    page.goto(f"/runs/{run_name}/pairs?mem_threshold=0.1&infl_threshold=0.155")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    summary = page.request.get(
        f"/api/runs/{run_name}/pairs?mem_threshold=0.1&infl_threshold=0.155&limit=0"
    ).json()["summary"]

    assert parse_qs(urlparse(page.url).query)["infl_threshold"] == ["0.155"]
    assert page.locator("#infl-value").inner_text() == "0.155"
    assert page.locator("#summary-pairs").inner_text() == f"{summary['pairs']:,}"
    assert "infl_threshold=0.155" in page.locator("#csv-link").get_attribute("href")


def test_moving_one_slider_keeps_other_threshold(page, run_name):
    page.goto(f"/runs/{run_name}/pairs?mem_threshold=0.1&infl_threshold=0.155")
    expect(page.locator("body[data-ready=true]")).to_be_attached()

    with page.expect_response(lambda response: "/api/runs/" in response.url):
        set_slider(page, "#mem-threshold", 0.2)

    query = parse_qs(urlparse(page.url).query)
    assert query["mem_threshold"] == ["0.2"]
    assert query["infl_threshold"] == ["0.155"]


def test_class_filter_follows_url(page, run_name):
    page.goto(f"/runs/{run_name}/pairs?mem_threshold=0&infl_threshold=0.05")
    expect(page.locator("body[data-ready=true]")).to_be_attached()

    with page.expect_response(lambda response: "/api/runs/" in response.url):
        page.select_option("#label", "4")
    expect(page.locator("#pairs-list .pair").first).to_contain_text("label 4")
    assert parse_qs(urlparse(page.url).query)["label"] == ["4"]


def test_pair_permalink_opens(page, run_name):
    page.goto(f"/runs/{run_name}/pairs")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    tile = page.locator("#pairs-list .pair").first
    href = tile.get_attribute("href")

    tile.click()
    page.wait_for_url(f"**{href}")

    train_index, test_index = href.rstrip("/").split("/")[-2:]
    expect(page.locator("h1")).to_have_text(
        f"Training example {train_index} → test example {test_index}"
    )
    expect(page.locator("#pair-infl")).to_be_visible()
    images = page.locator("img.large")
    assert images.count() == 2
    for index in range(2):
        assert images.nth(index).evaluate("image => image.complete && image.naturalWidth > 0")


def test_influence_slider_stops_at_stored_floor(page, run_name):
    """The run stores no influence below its floor (0.02), so the slider goes no lower."""
    page.goto(f"/runs/{run_name}/pairs")
    expect(page.locator("body[data-ready=true]")).to_be_attached()

    with page.expect_response(lambda response: "/api/runs/" in response.url):
        set_slider(page, "#infl-threshold", -0.5)

    assert parse_qs(urlparse(page.url).query)["infl_threshold"] == ["0.02"]
    expect(page.locator("#pairs-error")).to_be_hidden()
    assert page.locator("#pairs-list .pair").count() > 0


def test_noise_warning_follows_selection(page, run_name):
    """Where many selected pairs lie within two standard errors of zero, the page warns."""
    page.goto(f"/runs/{run_name}/pairs?mem_threshold=0&infl_threshold=0.02")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    summary = page.request.get(
        f"/api/runs/{run_name}/pairs?mem_threshold=0&infl_threshold=0.02&limit=0"
    ).json()["summary"]
    noisy = summary["pairs_with_se"] - summary["pairs_above_two_se"]

    assert summary["pairs_with_se"] == summary["pairs"]
    assert noisy > 0.2 * summary["pairs"], "the test needs a noisy selection"
    expect(page.locator("#noise-warning")).to_be_visible()
    expect(page.locator("#noise-warning")).to_contain_text(
        f"{noisy:,} of {summary['pairs']:,} pairs with a standard error"
    )
    expect(page.locator("#summary-above-se")).to_have_text(f"{summary['pairs_above_two_se']:,}")

    with page.expect_response(lambda response: "/api/runs/" in response.url):
        set_slider(page, "#infl-threshold", 1)
    expect(page.locator("#summary-pairs")).to_have_text("0")
    expect(page.locator("#noise-warning")).to_be_hidden()


def test_back_button_restores_previous_selection(page, run_name):
    page.goto(f"/runs/{run_name}/pairs")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    default_pairs = page.locator("#summary-pairs").inner_text()

    # A drag of several steps, then its release, makes one history entry.
    with page.expect_response(lambda response: "/api/runs/" in response.url):
        for value in (0.1, 0.08, 0.05):
            set_slider(page, "#infl-threshold", value)
        page.eval_on_selector("#infl-threshold", "slider => slider.dispatchEvent(new Event('change'))")
    expect(page.locator("#summary-pairs")).not_to_have_text(default_pairs)
    with page.expect_response(lambda response: "/api/runs/" in response.url):
        page.select_option("#label", "4")

    with page.expect_response(lambda response: "/api/runs/" in response.url):
        page.go_back()
    assert "label" not in parse_qs(urlparse(page.url).query)
    assert page.locator("#label").input_value() == ""
    assert page.locator("#infl-threshold").input_value() == "0.05"

    with page.expect_response(lambda response: "/api/runs/" in response.url):
        page.go_back()
    assert parse_qs(urlparse(page.url).query)["infl_threshold"] == ["0.15"]
    assert page.locator("#infl-threshold").input_value() == "0.15"
    expect(page.locator("#summary-pairs")).to_have_text(default_pairs)
