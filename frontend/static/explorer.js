// Shared helpers of the explorer's pages: number formatting and SVG histograms.
"use strict";

window.Longtail = (function () {
  const SVG = "http://www.w3.org/2000/svg";

  // Format an estimate with a true minus sign; a missing value shows as a dash.
  function formatNumber(value, digits = 3) {
    if (value === null || value === undefined) return "–";
    return value.toFixed(digits).replace("-", "−");
  }

  function formatCount(value) {
    return value === null || value === undefined ? "–" : value.toLocaleString("en-US");
  }

  function svgElement(name, attributes, text) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (text !== undefined) element.textContent = text;
    return element;
  }

  // Trim empty bins at both ends of a mem histogram, but always show [0, 1].
  function visibleRange(histogram) {
    const { edges, counts } = histogram;
    let first = counts.findIndex((count) => count > 0);
    if (first < 0) first = 0;
    const zero = edges.findIndex((edge) => edge >= 0);
    const start = Math.max(0, Math.min(first, zero < 0 ? first : zero));
    return [start, counts.length];
  }

  // Draw `histogram` ({edges, counts}) as bars into `figure`, replacing what was there.
  function drawHistogram(figure, histogram, options = {}) {
    const trim = options.trim !== undefined ? options.trim : figure.dataset.label === "mem";
    const [start, stop] = trim ? visibleRange(histogram) : [0, histogram.counts.length];
    const counts = histogram.counts.slice(start, stop);
    const edges = histogram.edges.slice(start, stop + 1);
    // One unit per pixel of the figure's width keeps the labels' font size in narrow
    // cards. A figure not laid out yet takes data-width.
    const width = figure.clientWidth || Number(figure.dataset.width || 1000);
    const height = Number(figure.dataset.height || 140);
    const left = 44, bottom = 22, top = 8, right = 8;
    const plotWidth = width - left - right, plotHeight = height - top - bottom;
    const maxCount = Math.max(1, ...counts);
    const low = edges[0], high = edges[edges.length - 1];
    const x = (value) => left + ((value - low) / (high - low || 1)) * plotWidth;
    // A log scale (of 1 + count) keeps a tail of a few examples visible beside a
    // bin of thousands, as in most mem histograms.
    const logScale = figure.dataset.scale === "log";
    const share = (count) => (logScale ? Math.log10(1 + count) / Math.log10(1 + maxCount) : count / maxCount);
    const y = (count) => top + plotHeight - share(count) * plotHeight;

    const svg = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
    svg.appendChild(svgElement("title", {}, `histogram of ${figure.dataset.label || "values"}`));
    counts.forEach((count, bin) => {
      if (count === 0) return;
      const x0 = x(edges[bin]), x1 = x(edges[bin + 1]);
      const bar = svgElement("rect", {
        class: "bar", x: x0 + 0.5, y: y(count), width: Math.max(1, x1 - x0 - 1),
        height: top + plotHeight - y(count),
      });
      bar.appendChild(svgElement("title", {},
        `${formatNumber(edges[bin], 2)} to ${formatNumber(edges[bin + 1], 2)}: ${formatCount(count)}`));
      svg.appendChild(bar);
    });

    svg.appendChild(svgElement("line", { x1: left, x2: width - right, y1: top + plotHeight, y2: top + plotHeight }));
    svg.appendChild(svgElement("line", { x1: left, x2: left, y1: top, y2: top + plotHeight }));
    svg.appendChild(svgElement("text", { x: left - 4, y: top + 8, "text-anchor": "end" }, formatCount(maxCount)));
    svg.appendChild(svgElement("text", { x: left - 4, y: top + plotHeight, "text-anchor": "end" }, "0"));
    if (logScale) {
      // Powers of ten between 0 and the top label, where they leave room for both.
      for (let power = 10; power < maxCount; power *= 10) {
        const level = y(power);
        if (level < top + 14 || level > top + plotHeight - 14) continue;
        svg.appendChild(svgElement("line", { x1: left - 4, x2: left, y1: level, y2: level }));
        svg.appendChild(svgElement("text", { x: left - 6, y: level + 4, "text-anchor": "end" }, formatCount(power)));
      }
      svg.appendChild(svgElement("text", { x: width - right, y: top + 10, "text-anchor": "end", class: "scale-note" },
        "log scale"));
    }
    // Ticks at multiples of a round step, so labels read 0.25, 0.50 rather than 0.37.
    const span = high - low;
    const tickStep = [0.05, 0.1, 0.25, 0.5].find((candidate) => span / candidate <= Math.max(3, width / 100)) || 1;
    for (let value = Math.ceil(low / tickStep - 1e-9) * tickStep; value <= high + 1e-9; value += tickStep) {
      svg.appendChild(svgElement("line", { x1: x(value), x2: x(value), y1: top + plotHeight, y2: top + plotHeight + 4 }));
      svg.appendChild(svgElement("text", { x: x(value), y: height - 4, "text-anchor": "middle" },
        formatNumber(Math.abs(value) < 1e-9 ? 0 : value, 2)));
    }
    figure.replaceChildren(svg);
  }

  function drawAllHistograms() {
    document.querySelectorAll("figure.histogram[data-histogram]").forEach((figure) => {
      drawHistogram(figure, JSON.parse(figure.dataset.histogram));
    });
  }

  document.addEventListener("DOMContentLoaded", drawAllHistograms);
  return { formatNumber, formatCount, drawHistogram };
})();
