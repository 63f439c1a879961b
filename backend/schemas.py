"""Response schemas of the JSON API, named by role; the HTML pages render the same objects."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ClassPublic(BaseModel):
    label: int
    name: str
    train_count: int
    test_count: int


class RunPublic(BaseModel):
    name: str
    dataset: str
    dataset_name: str
    model: str
    config: dict
    trials: int
    subset_ratio: float
    n_train: int
    n_test: int
    num_classes: int
    image_shape: list[int]
    accuracy_mean: float | None = Field(description="Mean test accuracy of the trials' models.")
    accuracy_std: float | None
    influence_floor: float = Field(
        description="Influences below this value are stored only among an example's top k."
    )
    influence_top_k: int
    created_at: datetime
    loaded_at: datetime
    classes: list[ClassPublic]


class RunsPublic(BaseModel):
    runs: list[RunPublic]
    count: int


class HistogramPublic(BaseModel):
    """Counts of values in equal-width bins; `edges` has one more entry than `counts`."""

    edges: list[float]
    counts: list[int]


class ClassHistogramPublic(BaseModel):
    label: int
    name: str
    missing: int = Field(description="Training examples of this class without a mem estimate.")
    histogram: HistogramPublic


class SelectionSummary(BaseModel):
    pairs: int
    test_examples: int = Field(description="Unique test examples among the selected pairs.")
    train_examples: int = Field(description="Unique training examples among the selected pairs.")
    single_train_test_examples: int = Field(
        description="Test examples that appear in exactly one selected pair."
    )
    pairs_with_se: int = Field(
        description="Selected pairs with a standard error; imported runs may have none."
    )
    pairs_above_two_se: int = Field(
        description="Selected pairs whose influence exceeds twice its standard error; "
        "the rest of those with a standard error are hard to tell from noise."
    )


class SelectionThresholds(BaseModel):
    mem_threshold: float
    infl_threshold: float
    label: int | None = None
    same_class: bool = True


class RunOverviewPublic(BaseModel):
    run: RunPublic
    missing_mem: int = Field(description="Training examples without a mem estimate.")
    mem_histogram: HistogramPublic
    class_histograms: list[ClassHistogramPublic]
    default_selection: SelectionThresholds
    default_summary: SelectionSummary


class ExamplePublic(BaseModel):
    split: str
    index: int
    label: int
    class_name: str
    mem: float | None = None
    mem_se: float | None = None
    consistency: float | None = None
    consistency_se: float | None = None
    in_trials: int | None = Field(None, description="Trials whose subset included the example.")
    out_trials: int | None = Field(None, description="Trials whose subset left it out.")
    accuracy: float | None = Field(None, description="Fraction of all trials' models correct on it.")
    has_image: bool
    image_url: str
    page_url: str


class GalleryPublic(BaseModel):
    run: str
    label: int
    class_name: str
    sort: str = Field(description="The estimate the examples are sorted by: mem or consistency.")
    order: str
    mem_min: float | None
    mem_max: float | None
    page: int
    per_page: int
    total: int = Field(
        description="Examples of the class with the sort estimate and mem in the filter range."
    )
    pages: int
    missing: int = Field(
        description="Examples of the class without the sort estimate, not shown."
    )
    examples: list[ExamplePublic]


class InfluencePublic(BaseModel):
    infl: float
    infl_se: float | None
    example: ExamplePublic = Field(description="The example on the other side of the pair.")
    pair_url: str


class InfluencesPublic(BaseModel):
    run: str
    example: ExamplePublic
    limit: int
    order: str = Field(description="desc: highest influence first; asc: lowest first.")
    exact_count: int = Field(
        description="How many influences of this example the run stores in exact rank "
        "order; a larger limit returns no more, because influences below the floor "
        "beyond the top-k largest or most negative were not stored."
    )
    influences: list[InfluencePublic] = Field(description="In the order requested.")


class PairPublic(BaseModel):
    train_index: int
    test_index: int
    train_label: int
    test_label: int
    train_mem: float | None
    infl: float
    infl_se: float | None
    train_image_url: str
    test_image_url: str
    pair_url: str


class PairsPublic(BaseModel):
    run: str
    selection: SelectionThresholds
    limit: int
    offset: int
    summary: SelectionSummary
    histogram: HistogramPublic = Field(description="Selected influences, from infl_threshold to 1.")
    pairs: list[PairPublic] = Field(description="Highest influence first.")


class PairDetailPublic(BaseModel):
    run: str
    train: ExamplePublic
    test: ExamplePublic
    infl: float
    infl_se: float | None
    selected_by_default: bool = Field(
        description="Whether the pair passes the default thresholds and the same-class rule."
    )
    default_selection: SelectionThresholds
