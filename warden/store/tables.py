"""The tables as the queries see them today (SQLAlchemy Core).

Migrations in ``migrations.py`` create and change the real tables, each step with its own frozen
definitions; these objects describe the shape after the last migration and are never used to
create anything (the indexes, too, are the migrations' business). ``tests/store`` checks that
the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

# jsonb in PostgreSQL (smaller, indexable); JSON text in SQLite.
Json = sa.JSON().with_variant(JSONB(), "postgresql")

requests = sa.Table(
    "requests",
    metadata,
    sa.Column("request_id", sa.String, primary_key=True),
    sa.Column("trace_id", sa.String, nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("ended_at", sa.Double, nullable=False),
    sa.Column("api", sa.String, nullable=False),
    sa.Column("model", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("http_status", sa.Integer, nullable=False),
    sa.Column("latency_s", sa.Double, nullable=False),
    sa.Column("ttft_s", sa.Double),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("deployment", sa.String),
    sa.Column("provider", sa.String),
    sa.Column("upstream_model", sa.String),
    sa.Column("model_version", sa.String),
    sa.Column("key_id", sa.String),
    sa.Column("team", sa.String),
    sa.Column("end_user", sa.String),
    sa.Column("session_id", sa.String),
    sa.Column("error_type", sa.String),
    sa.Column("error_message", sa.Text),
    sa.Column("input_tokens", sa.Integer, nullable=False),
    sa.Column("output_tokens", sa.Integer, nullable=False),
    sa.Column("cached_tokens", sa.Integer, nullable=False),
    sa.Column("output_tokens_per_s", sa.Double),
    sa.Column("cost_usd", sa.Double),
    sa.Column("cache", sa.String, nullable=False),
    sa.Column("region", sa.String),
    sa.Column("attempts", Json, nullable=False),
    sa.Column("findings", Json, nullable=False),
    sa.Column("tags", Json, nullable=False),
    sa.Column("metadata", Json, nullable=False),
)

payloads = sa.Table(
    "payloads",
    metadata,
    sa.Column("request_id", sa.String, sa.ForeignKey("requests.request_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("policy", sa.String, nullable=False),
    sa.Column("prompt", sa.Text),
    sa.Column("completion", sa.Text),
)

request_tags = sa.Table(
    "request_tags",
    metadata,
    sa.Column("request_id", sa.String, sa.ForeignKey("requests.request_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("value", sa.String, nullable=False),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String, sa.ForeignKey("requests.request_id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("score", sa.Double),
    sa.Column("label", sa.String),
    sa.Column("comment", sa.Text),
    sa.Column("source", sa.String, nullable=False),
)

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("applied_at", sa.Double, nullable=False),
)
