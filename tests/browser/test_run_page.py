"""The run page in a real browser: its mem histograms draw on a log scale."""

from __future__ import annotations

import json
import math

import pytest
from playwright.sync_api import expect


def test_mem_histogram_uses_log_scale(page, run_name):
    page.goto(f"/runs/{run_name}")
    figure = page.locator("figure.histogram[data-scale=log]").first
    expect(figure.locator("svg")).to_be_attached()

    assert figure.locator("text.scale-note").text_content() == "log scale"
    tick_labels = figure.locator("text").all_text_contents()
    assert "10" in tick_labels, tick_labels
    assert "100" in tick_labels, tick_labels

    counts = [count for count in json.loads(figure.get_attribute("data-histogram"))["counts"]
              if count]
    heights = [float(height) for height in figure.locator("rect.bar").evaluate_all(
        "bars => bars.map(bar => bar.getAttribute('height'))"
    )]
    assert len(heights) == len(counts)
    # Bar heights are proportional to log(1 + count), not to count.
    expected = math.log10(1 + min(counts)) / math.log10(1 + max(counts))
    assert min(heights) / max(heights) == pytest.approx(expected, rel=0.02)
