// The pairs page: sliders and filters recompute the selection through the JSON API,
// and the page URL follows them, so a copied link reopens the same view.
"use strict";

(function () {
  const { formatNumber, formatCount, drawHistogram } = window.Longtail;
  const DEBOUNCE_MS = 60;
  // The page warns when more than this share of the selected pairs lies within
  // twice its standard error of zero.
  const NOISE_SHARE = 0.2;
  const initial = JSON.parse(document.getElementById("pairs-data").textContent);
  const pagePath = window.location.pathname;
  const apiPath = "/api" + pagePath;
  const controls = {
    mem: document.getElementById("mem-threshold"),
    infl: document.getElementById("infl-threshold"),
    label: document.getElementById("label"),
    sameClass: document.getElementById("same-class"),
  };
  // The thresholds of the view. A slider moves in steps of 0.01, but a link may
  // carry any value, such as 0.155, which the slider can only show rounded.
  const thresholds = {
    mem: initial.selection.mem_threshold,
    infl: initial.selection.infl_threshold,
  };
  let limit = initial.limit;
  let offset = initial.offset;
  let requestNumber = 0;
  let timer = null;
  // Whether a slider drag has its own history entry yet: the first step of a drag
  // adds one, later steps update it, and the release ends the drag.
  let dragging = false;

  function currentQuery() {
    const query = new URLSearchParams();
    query.set("mem_threshold", thresholds.mem);
    query.set("infl_threshold", thresholds.infl);
    if (controls.label.value !== "") query.set("label", controls.label.value);
    query.set("same_class", controls.sameClass.checked ? "true" : "false");
    return query;
  }

  function pageQuery() {
    const query = currentQuery();
    query.set("limit", limit);
    query.set("offset", offset);
    return query;
  }

  function image(url, alt) {
    const element = document.createElement("img");
    element.src = url;
    element.alt = alt;
    element.loading = "lazy";
    return element;
  }

  function pairTile(pair) {
    const tile = document.createElement("a");
    tile.className = "pair";
    tile.href = pair.pair_url;
    const middle = document.createElement("div");
    middle.className = "middle";
    const value = document.createElement("b");
    value.textContent = formatNumber(pair.infl);
    const se = document.createElement("span");
    se.className = "se";
    se.textContent = pair.infl_se === null ? "" : "± " + formatNumber(pair.infl_se);
    middle.append(value, se, document.createTextNode(" →"));
    const caption = document.createElement("div");
    caption.className = "caption";
    const left = document.createElement("span");
    left.textContent = `train #${pair.train_index} · mem ${formatNumber(pair.train_mem, 2)}`;
    const right = document.createElement("span");
    right.textContent = `test #${pair.test_index} · label ${pair.test_label}`;
    caption.append(left, right);
    tile.append(
      image(pair.train_image_url, `train ${pair.train_index}`), middle,
      image(pair.test_image_url, `test ${pair.test_index}`), caption,
    );
    return tile;
  }

  function pagerLink(text, newOffset) {
    const link = document.createElement("a");
    link.href = "#";
    link.textContent = text;
    link.addEventListener("click", (event) => {
      event.preventDefault();
      offset = newOffset;
      showState("push");
      refresh();
    });
    return link;
  }

  function render(data) {
    const summary = data.summary;
    document.getElementById("summary-pairs").textContent = formatCount(summary.pairs);
    document.getElementById("summary-test").textContent = formatCount(summary.test_examples);
    document.getElementById("summary-train").textContent = formatCount(summary.train_examples);
    document.getElementById("summary-single").textContent = formatCount(summary.single_train_test_examples);
    // Without any standard error (imported runs), a count of 0 would read as a verdict.
    document.getElementById("summary-above-se").textContent =
      summary.pairs > 0 && summary.pairs_with_se === 0 ? "no SE" : formatCount(summary.pairs_above_two_se);
    // A pair within two standard errors of zero may owe its influence to chance.
    const warning = document.getElementById("noise-warning");
    // Pairs without a standard error (imported runs) cannot be judged.
    const noisy = summary.pairs_with_se - summary.pairs_above_two_se;
    warning.hidden = noisy <= NOISE_SHARE * summary.pairs_with_se;
    warning.textContent = `${formatCount(noisy)} of ${formatCount(summary.pairs_with_se)} pairs with a standard error have an influence within twice it, so they may be noise; more trials would tell (rerun the run's estimate command with a larger --trials, then load it again with --replace).`;
    drawHistogram(document.getElementById("pairs-histogram"), data.histogram, { trim: false });

    const list = document.getElementById("pairs-list");
    list.replaceChildren(...data.pairs.map(pairTile));
    const range = document.getElementById("pairs-range");
    range.textContent = data.pairs.length
      ? `Pairs ${formatCount(data.offset + 1)} to ${formatCount(data.offset + data.pairs.length)} of ${formatCount(summary.pairs)}, highest influence first.`
      : summary.pairs ? "No pairs on this page." : "No pair passes these thresholds.";

    const pager = document.getElementById("pairs-pager");
    pager.replaceChildren();
    if (data.offset > 0) pager.append(pagerLink("← Previous", Math.max(0, data.offset - data.limit)));
    if (data.offset + data.pairs.length < summary.pairs) pager.append(pagerLink("Next →", data.offset + data.limit));
  }

  // historyMode "push" adds an entry, so that Back returns to the view before it,
  // and "replace" updates the current entry.
  function showState(historyMode = "replace") {
    document.getElementById("mem-value").textContent = formatThreshold(thresholds.mem);
    document.getElementById("infl-value").textContent = formatThreshold(thresholds.infl);
    const query = pageQuery();
    const url = `${pagePath}?${query}`;
    if (historyMode === "push" && url !== window.location.pathname + window.location.search) {
      history.pushState(null, "", url);
    } else {
      history.replaceState(null, "", url);
    }
    document.getElementById("json-link").href = `${apiPath}?${query}`;
    document.getElementById("csv-link").href = `/api${pagePath}.csv?${currentQuery()}`;
  }

  async function refresh() {
    const number = ++requestNumber;
    const error = document.getElementById("pairs-error");
    try {
      const response = await fetch(`${apiPath}?${pageQuery()}`, { headers: { Accept: "application/json" } });
      const data = await response.json();
      // A slower, older response must not overwrite a newer one.
      if (number !== requestNumber) return;
      if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
      error.hidden = true;
      render(data);
    } catch (failure) {
      if (number !== requestNumber) return;
      error.textContent = `Could not update the selection: ${failure.message}`;
      error.hidden = false;
    }
  }

  function scheduleRefresh(historyMode) {
    offset = 0;
    showState(historyMode);
    clearTimeout(timer);
    timer = setTimeout(refresh, DEBOUNCE_MS);
  }

  // Two decimals, or as many as a value from a link has, up to six.
  function formatThreshold(value) {
    for (let digits = 2; digits < 6; digits++) {
      if (Number(value.toFixed(digits)) === value) return formatNumber(value, digits);
    }
    return formatNumber(value, 6);
  }

  // Only the moved slider sets its threshold, so the other keeps a value from a link.
  function onSliderInput(event) {
    const slider = event.target;
    let value = Number(slider.value);
    // The influence slider's lowest step is the run's floor rounded up to 0.01;
    // there the threshold is the floor itself, the lowest that the run stores.
    if (slider === controls.infl && value === Number(slider.min)) {
      value = Math.min(value, Number(slider.dataset.floor));
    }
    thresholds[slider === controls.mem ? "mem" : "infl"] = value;
    scheduleRefresh(dragging ? "replace" : "push");
    dragging = true;
  }

  // Back and Forward restore the controls from the URL of the entry.
  function onHistory() {
    const query = new URLSearchParams(window.location.search);
    thresholds.mem = Number(query.get("mem_threshold") ?? initial.selection.mem_threshold);
    thresholds.infl = Number(query.get("infl_threshold") ?? initial.selection.infl_threshold);
    controls.mem.value = thresholds.mem;
    controls.infl.value = thresholds.infl;
    controls.label.value = query.get("label") ?? "";
    controls.sameClass.checked = query.get("same_class") !== "false";
    limit = Number(query.get("limit") ?? initial.limit);
    offset = Number(query.get("offset") ?? 0);
    dragging = false;
    showState();
    refresh();
  }

  controls.mem.addEventListener("input", onSliderInput);
  controls.infl.addEventListener("input", onSliderInput);
  controls.mem.addEventListener("change", () => { dragging = false; });
  controls.infl.addEventListener("change", () => { dragging = false; });
  controls.label.addEventListener("change", () => scheduleRefresh("push"));
  controls.sameClass.addEventListener("change", () => scheduleRefresh("push"));
  window.addEventListener("popstate", onHistory);

  showState();
  render(initial);
  document.body.dataset.ready = "true";
})();
