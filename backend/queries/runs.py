"""Runs: the list and the overview page with its memorization histograms."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from backend.queries.histogram import assemble, bin_expression
from backend.queries.pairs import default_selection, summarize_selection
from backend.schemas import (
    ClassHistogramPublic,
    ClassPublic,
    RunOverviewPublic,
    RunPublic,
    RunsPublic,
)
from backend.store.models import Example, Run

# Memorization lies in [-1, 1]; bins of 0.05 keep the tail above 0.25 readable.
MEM_LOW, MEM_HIGH, MEM_BINS = -1.0, 1.0, 40


def run_public(run: Run) -> RunPublic:
    return RunPublic(
        name=run.name,
        dataset=run.dataset,
        dataset_name=run.dataset_name,
        model=run.model,
        config=run.config,
        trials=run.trials,
        subset_ratio=run.subset_ratio,
        n_train=run.n_train,
        n_test=run.n_test,
        num_classes=run.num_classes,
        image_shape=list(run.image_shape),
        accuracy_mean=run.accuracy_mean,
        accuracy_std=run.accuracy_std,
        influence_floor=run.influence_floor,
        influence_top_k=run.influence_top_k,
        created_at=run.created_at,
        loaded_at=run.loaded_at,
        classes=[
            ClassPublic(
                label=run_class.label,
                name=run_class.name,
                train_count=run_class.train_count,
                test_count=run_class.test_count,
            )
            for run_class in sorted(run.classes, key=lambda item: item.label)
        ],
    )


def read_runs(session: Session) -> RunsPublic:
    """Return every run, newest load first."""
    runs = session.scalars(
        select(Run).options(selectinload(Run.classes)).order_by(Run.loaded_at.desc(), Run.name)
    ).all()
    return RunsPublic(runs=[run_public(run) for run in runs], count=len(runs))


def read_run_overview(session: Session, run: Run) -> RunOverviewPublic:
    """Return a run with its mem histograms, all classes and per class, and default selection."""
    mem_bin = bin_expression(Example.mem, MEM_LOW, MEM_HIGH, MEM_BINS).label("bin")
    rows = session.execute(
        select(Example.label, mem_bin, func.count())
        .where(Example.run_id == run.id, Example.split == "train", Example.mem.is_not(None))
        .group_by(Example.label, mem_bin)
    ).all()
    missing_rows = session.execute(
        select(Example.label, func.count())
        .where(Example.run_id == run.id, Example.split == "train", Example.mem.is_(None))
        .group_by(Example.label)
    ).all()
    missing = {label: count for label, count in missing_rows}

    public = run_public(run)
    class_histograms = [
        ClassHistogramPublic(
            label=run_class.label,
            name=run_class.name,
            missing=missing.get(run_class.label, 0),
            histogram=assemble(
                [(number, count) for label, number, count in rows if label == run_class.label],
                MEM_LOW, MEM_HIGH, MEM_BINS,
            ),
        )
        for run_class in public.classes
    ]
    default = default_selection(run)
    return RunOverviewPublic(
        run=public,
        missing_mem=sum(missing.values()),
        mem_histogram=assemble(
            [(number, count) for _, number, count in rows], MEM_LOW, MEM_HIGH, MEM_BINS
        ),
        class_histograms=class_histograms,
        default_selection=default,
        default_summary=summarize_selection(session, run, default),
    )
