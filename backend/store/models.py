"""SQLAlchemy models of the store; Alembic migrations in migrations/ create them.

The explorer sends many small queries (a gallery page, the top influences of one
example, the pairs above two thresholds), so influences carry copies of the labels
and the training example's memorization: pair selection then reads one table
through one index.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SPLITS = ("train", "test")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Run(Base):
    """One estimate run: its dataset, model, training config and summary figures."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    dataset: Mapped[str] = mapped_column(String(500))
    dataset_name: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(50))
    config: Mapped[dict] = mapped_column(JSON)
    trials: Mapped[int] = mapped_column(Integer)
    subset_ratio: Mapped[float] = mapped_column(Float)
    n_train: Mapped[int] = mapped_column(Integer)
    n_test: Mapped[int] = mapped_column(Integer)
    num_classes: Mapped[int] = mapped_column(Integer)
    image_shape: Mapped[list] = mapped_column(JSON)
    accuracy_mean: Mapped[float | None] = mapped_column(Float)
    accuracy_std: Mapped[float | None] = mapped_column(Float)
    # Influences below this value are dropped unless among an example's top k.
    influence_floor: Mapped[float] = mapped_column(Float)
    influence_top_k: Mapped[int] = mapped_column(Integer)
    timings: Mapped[dict] = mapped_column(JSON, default=dict)
    source_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    classes: Mapped[list[RunClass]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )


class RunClass(Base):
    """One class of a run's dataset: its label and display name."""

    __tablename__ = "classes"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    train_count: Mapped[int] = mapped_column(Integer)
    test_count: Mapped[int] = mapped_column(Integer)

    run: Mapped[Run] = relationship(back_populates="classes")


class Example(Base):
    """One train or test example with its estimates; test examples have no mem."""

    __tablename__ = "examples"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    split: Mapped[str] = mapped_column(String(5), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[int] = mapped_column(Integer)
    mem: Mapped[float | None] = mapped_column(Float)
    mem_se: Mapped[float | None] = mapped_column(Float)
    consistency: Mapped[float | None] = mapped_column(Float)
    consistency_se: Mapped[float | None] = mapped_column(Float)
    in_trials: Mapped[int | None] = mapped_column(Integer)
    out_trials: Mapped[int | None] = mapped_column(Integer)
    # Fraction of all trials whose model classified this example correctly.
    accuracy: Mapped[float | None] = mapped_column(Float)
    # A PNG of the image at its stored size; the API scales it up when serving.
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary)
    image_ref: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # The class name of an example is classes.name at (run_id, label).
        ForeignKeyConstraint(
            ["run_id", "label"], ["classes.run_id", "classes.label"], ondelete="CASCADE"
        ),
        Index("ix_examples_gallery", "run_id", "split", "label", "mem"),
        Index("ix_examples_mem", "run_id", "split", "mem"),
    )


class Influence(Base):
    """Influence of training example `train_index` on test example `test_index`."""

    __tablename__ = "influences"

    # No foreign key to runs: on PostgreSQL its per-row check made the COPY of
    # influences about 1.7 times slower (66,000 rows, 2-core machine). Loads and
    # deletes in backend.store.load keep influences and runs consistent instead.
    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    train_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    test_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    infl: Mapped[float] = mapped_column(Float)
    infl_se: Mapped[float | None] = mapped_column(Float)
    # Copies from examples, so pair selection needs no join.
    train_label: Mapped[int] = mapped_column(Integer)
    test_label: Mapped[int] = mapped_column(Integer)
    train_mem: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_influences_test", "run_id", "test_index", "infl"),
        Index("ix_influences_train", "run_id", "train_index", "infl"),
        Index("ix_influences_pairs", "run_id", "infl", "train_mem"),
    )


class ExperimentResult(Base):
    """The stored result of an experiment run on top of a run's estimates."""

    __tablename__ = "experiment_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict] = mapped_column(JSON)
    result: Mapped[dict] = mapped_column(JSON)
    plot_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    complete: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
