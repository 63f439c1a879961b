"""Create runs, classes, examples, influences and experiment results.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("dataset", sa.String(length=500), nullable=False),
        sa.Column("dataset_name", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=50), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("trials", sa.Integer(), nullable=False),
        sa.Column("subset_ratio", sa.Float(), nullable=False),
        sa.Column("n_train", sa.Integer(), nullable=False),
        sa.Column("n_test", sa.Integer(), nullable=False),
        sa.Column("num_classes", sa.Integer(), nullable=False),
        sa.Column("image_shape", sa.JSON(), nullable=False),
        sa.Column("accuracy_mean", sa.Float(), nullable=True),
        sa.Column("accuracy_std", sa.Float(), nullable=True),
        sa.Column("influence_floor", sa.Float(), nullable=False),
        sa.Column("influence_top_k", sa.Integer(), nullable=False),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )

    op.create_table(
        "classes",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("train_count", sa.Integer(), nullable=False),
        sa.Column("test_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "label"),
    )

    op.create_table(
        "examples",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(length=5), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("mem", sa.Float(), nullable=True),
        sa.Column("mem_se", sa.Float(), nullable=True),
        sa.Column("consistency", sa.Float(), nullable=True),
        sa.Column("consistency_se", sa.Float(), nullable=True),
        sa.Column("in_trials", sa.Integer(), nullable=True),
        sa.Column("out_trials", sa.Integer(), nullable=True),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("thumbnail", sa.LargeBinary(), nullable=True),
        sa.Column("image_ref", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id", "label"], ["classes.run_id", "classes.label"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "split", "index"),
    )
    op.create_index("ix_examples_gallery", "examples", ["run_id", "split", "label", "mem"])
    op.create_index("ix_examples_mem", "examples", ["run_id", "split", "mem"])

    op.create_table(
        "influences",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("train_index", sa.Integer(), nullable=False),
        sa.Column("test_index", sa.Integer(), nullable=False),
        sa.Column("infl", sa.Float(), nullable=False),
        sa.Column("infl_se", sa.Float(), nullable=True),
        sa.Column("train_label", sa.Integer(), nullable=False),
        sa.Column("test_label", sa.Integer(), nullable=False),
        sa.Column("train_mem", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "train_index", "test_index"),
    )
    op.create_index("ix_influences_pairs", "influences", ["run_id", "infl", "train_mem"])
    op.create_index("ix_influences_test", "influences", ["run_id", "test_index", "infl"])
    op.create_index("ix_influences_train", "influences", ["run_id", "train_index", "infl"])

    op.create_table(
        "experiment_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("plot_png", sa.LargeBinary(), nullable=True),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_experiment_results_run_id", "experiment_results", ["run_id"])


def downgrade() -> None:
    op.drop_table("experiment_results")
    op.drop_table("influences")
    op.drop_table("examples")
    op.drop_table("classes")
    op.drop_table("runs")
