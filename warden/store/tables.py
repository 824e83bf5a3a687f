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
    sa.Column("client_request_id", sa.String),  # m005
    sa.Column("truncated", Json, nullable=False),  # m005
)

# The foreign key is SQLite's only: PostgreSQL's went in m002 (a trigger deletes a record's
# payload with it; Store.write checks that a payload's record is stored).
payloads = sa.Table(
    "payloads",
    metadata,
    sa.Column("request_id", sa.String, sa.ForeignKey("requests.request_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("policy", sa.String, nullable=False),
    sa.Column("prompt", sa.Text),
    sa.Column("completion", sa.Text),
)

# No foreign key (m002): Store.write adds tags with their record, a trigger deletes them with it.
# The primary key is (started_at, request_id, key): new tags go at its end.
request_tags = sa.Table(
    "request_tags",
    metadata,
    sa.Column("started_at", sa.Double, primary_key=True),  # the record's
    sa.Column("request_id", sa.String, primary_key=True),
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

# One row per guard finding of a record (m004), written with it and deleted with it (ON DELETE
# CASCADE): the guardrails page counts findings and lists guarded requests from here, without
# reading the records' JSON. ``direction`` is the finding's ``where`` (input or output).
request_findings = sa.Table(
    "request_findings",
    metadata,
    sa.Column("request_id", sa.String, sa.ForeignKey("requests.request_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("started_at", sa.Double, nullable=False),  # the record's
    sa.Column("scanner", sa.String, nullable=False),
    sa.Column("type", sa.String, nullable=False),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("direction", sa.String, nullable=False),
    sa.Column("score", sa.Double),
)

# A version per hour of started_at (floor(started_at / 3600)), bumped by triggers whenever a
# requests row of that hour is inserted, deleted or updated (``warden.store.rollup``).
request_hours = sa.Table(
    "request_hours",
    metadata,
    sa.Column("hour", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
              autoincrement=False),
    sa.Column("version", sa.BigInteger, nullable=False),
)

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("applied_at", sa.Double, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("token_sha256", sa.String, nullable=False),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("role", sa.String, nullable=False),
    sa.Column("team", sa.String),
    sa.Column("models", Json),
    sa.Column("tags", Json, nullable=False),
    sa.Column("payloads", sa.String),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("revoked_at", sa.Double),
    sa.Column("last_used_at", sa.Double),
)
