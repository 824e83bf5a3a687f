"""The Store interface: where Records, their Payloads and their feedback are kept and read back.

Everything downstream of the recorder (dashboard, monitors, admin API, compliance tools) reads
through this one interface; ``warden.store.sql.SqlStore`` implements it on SQLite and PostgreSQL.

The methods are synchronous and every implementation is thread-safe: the recorder calls
``write`` from its writer thread, the API calls the readers from a thread pool
(``anyio.to_thread`` / ``run_in_executor``), all on one shared Store object.

Statistics use one percentile method everywhere, the linear interpolation between closest ranks
of PostgreSQL's ``percentile_cont`` (numpy's default ``method="linear"``): for n sorted values
``v``, the p-th percentile is ``v[lo] + (v[hi] - v[lo]) * (h - lo)`` with ``h = p * (n - 1)``,
``lo = floor(h)``, ``hi = ceil(h)``. ``percentile()`` below is that method.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, get_args

from warden.errors import InvalidRequest, WardenError
from warden.observe.record import Payload, Record, Status
from warden.store.keys import KeyStore

GroupBy = Literal["model", "deployment", "key_id", "team", "provider"]
GROUP_BY: tuple[str, ...] = get_args(GroupBy)
MAX_PAGE = 1000
MAX_TIME = float(2**53)
"""The largest ``since`` or ``until`` (in absolute value) a filter takes."""


class StoreError(WardenError):
    """The store cannot do its work: the database is unreachable, or its schema is wrong.

    The message names the database (without its password) and what to do next."""

    status = 503
    type = "service_unavailable"
    code = "store_unavailable"


class RecordsRefused(StoreError):
    """The database answered, and refused the data of a batch (a value out of a column's range,
    text it cannot hold, a payload without its record): writing the same batch again fails
    again, where a StoreError of an unreachable database is worth retrying. The recorder sets
    refused records aside rather than waiting for the store to take them."""

    code = "records_refused"


@dataclass(slots=True, frozen=True)
class RequestFilter:
    """Which records to read; unset fields do not filter. Every set field must match.

    ``since`` is inclusive and ``until`` exclusive, both on ``started_at`` (unix seconds).
    ``tags`` matches records carrying every given key=value tag. ``text`` is a case-insensitive
    substring search over the prompt and completion payloads. ``client_request_id`` matches the
    records of requests sent with that ``x-request-id`` (several, when a client reused it), and
    a record whose own id it is (records stored before client ids were kept apart)."""

    since: float | None = None
    until: float | None = None
    model: str | None = None
    deployment: str | None = None
    key_id: str | None = None
    team: str | None = None
    end_user: str | None = None
    session_id: str | None = None
    status: Status | None = None
    client_request_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    text: str | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in ("ok", "error", "blocked"):
            raise InvalidRequest(
                f"status must be one of ok, error, blocked; got {self.status!r}", param="status"
            )
        for name in ("since", "until"):
            value = getattr(self, name)
            # The stores count whole hours in 64-bit SQL integers: bounds past 2**53 seconds
            # (285 million years) or not finite would overflow them.
            if value is not None and not abs(value) <= MAX_TIME:
                raise InvalidRequest(f"{name} must be unix seconds within +-{MAX_TIME:g}; "
                                     f"got {value!r}", param=name)


@dataclass(slots=True, frozen=True)
class Page:
    """One page of records, newest first; pass ``next_cursor`` back to get the next page
    (None: this was the last one)."""

    records: list[Record]
    next_cursor: str | None


@dataclass(slots=True, frozen=True)
class Feedback:
    """A score, label or comment given to one request (by a user, a reviewer or an evaluator)."""

    id: int
    request_id: str
    created_at: float
    score: float | None
    label: str | None
    comment: str | None
    source: str


class RequestDetail(NamedTuple):
    """One stored request: its record, its payload (None when not kept) and its feedback."""

    record: Record
    payload: Payload | None
    feedback: list[Feedback]


@dataclass(slots=True, frozen=True)
class StatsQuery:
    """Aggregates per time bucket and, optionally, per value of one column.

    Buckets are aligned to the epoch: a record falls in the bucket starting at
    ``floor(started_at / bucket_s) * bucket_s``. Only buckets with records are returned."""

    bucket_s: float = 60.0
    group_by: GroupBy | None = None
    where: RequestFilter = field(default_factory=RequestFilter)

    def __post_init__(self) -> None:
        if not (self.bucket_s > 0 and math.isfinite(self.bucket_s)):
            raise InvalidRequest(f"bucket_s must be a positive number; got {self.bucket_s}",
                                 param="bucket_s")
        if self.group_by is not None and self.group_by not in GROUP_BY:
            raise InvalidRequest(
                f"group_by must be one of {', '.join(GROUP_BY)}; got {self.group_by!r}",
                param="group_by",
            )


@dataclass(slots=True, frozen=True)
class StatsRow:
    """The aggregates of one bucket (and group).

    ``errors`` counts records with status "error" (blocked requests are not errors);
    ``availability`` is 1 minus the share of records with an HTTP status of 500 or more.
    Percentiles follow the module's method; ttft percentiles and the mean output speed are over
    the records that have them (None when none has). ``cost_usd`` sums the known costs (None when
    no record of the bucket has one); ``unknown_cost`` counts the records whose price is unknown.
    """

    bucket_start: float
    group: str | None
    count: int
    requests_per_s: float
    errors: int
    error_rate: float
    server_errors: int
    availability: float
    latency_p50: float
    latency_p95: float
    latency_p99: float
    ttft_p50: float | None
    ttft_p95: float | None
    output_tokens_per_s: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    unknown_cost: int


@dataclass(slots=True, frozen=True)
class SummaryRow:
    """The aggregates of all the records of a range ``[since, until)`` (and group).

    The fields mean what they mean in ``StatsRow``; ``requests_per_s`` is the count over the
    length of the range. ``blocked`` counts records with status "blocked", ``cache_hits``
    those answered from the cache; ``latency_mean`` is the mean latency. Percentiles are None
    when they were not asked for (and ttft percentiles when no record has a ttft)."""

    group: str | None
    count: int
    requests_per_s: float
    errors: int
    error_rate: float
    server_errors: int
    availability: float
    blocked: int
    cache_hits: int
    cache_hit_rate: float
    latency_mean: float
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    ttft_p50: float | None
    ttft_p95: float | None
    output_tokens_per_s: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    unknown_cost: int


@dataclass(slots=True, frozen=True)
class FindingCount:
    """How many guard findings of one kind the records of one time bucket have.

    ``where`` is "input" or "output"; buckets are aligned to the epoch, as in ``StatsQuery``."""

    bucket_start: float
    scanner: str
    type: str
    action: str
    where: str
    count: int


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The p-th percentile (0 <= p <= 1) of ascending values, by linear interpolation
    (PostgreSQL's ``percentile_cont``)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    h = p * (len(sorted_values) - 1)
    lo, hi = math.floor(h), math.ceil(h)
    a, b = sorted_values[lo], sorted_values[hi]
    return a + (b - a) * (h - lo)


class Store(ABC):
    """Keeps records, payloads and feedback; answers the readers' queries. Thread-safe."""

    @abstractmethod
    def write(self, records: list[Record], payloads: list[Payload]) -> None:
        """Store a batch in one transaction: all of it, or (raising StoreError) none of it.
        RecordsRefused (a StoreError) says that the database refuses the batch's data, where
        another StoreError says that it cannot be reached.

        Idempotent on ``request_id``: a record already stored is left as it is (first write
        wins), and so is its payload, so that a replayed batch neither duplicates a record nor
        brings back a payload that was erased since. A payload's record must be in the same
        batch or already stored."""

    @abstractmethod
    def get(self, request_id: str) -> RequestDetail | None:
        """The record, payload and feedback (oldest first) of one request; None if unknown."""

    @abstractmethod
    def query(self, where: RequestFilter, cursor: str | None = None, limit: int = 50) -> Page:
        """Records matching ``where``, newest first (by started_at, then request_id).

        ``cursor`` is the opaque ``next_cursor`` of the previous page. A walk through the pages
        never repeats a record and never skips one that was stored when it began; a record
        written during the walk shows up only if it sorts after the current page. ``limit`` is
        1 to 1000. A malformed cursor or limit raises InvalidRequest.

        With ``where.text``, one page reads a bounded number of payloads (newest first, of the
        records matching the other filters): when it stops before it found ``limit`` records,
        it holds fewer (maybe none) and its ``next_cursor`` goes on from the last record read.
        Only a None ``next_cursor`` says that nothing is left."""

    @abstractmethod
    def stats(self, query: StatsQuery) -> list[StatsRow]:
        """Aggregates of the records matching ``query.where``, ordered by bucket then group."""

    def summary(self, where: RequestFilter, group_by: GroupBy | None = None,
                percentiles: bool = True) -> list[SummaryRow]:
        """Aggregates of all the records matching ``where``, one row per group (group None
        without ``group_by``), most records first. ``where.since`` and ``where.until`` are
        required. Without ``percentiles`` the rows have none, and cost much less to compute
        over long ranges."""
        raise _unsupported(self, "summarize requests")

    def finding_counts(self, where: RequestFilter, bucket_s: float) -> list[FindingCount]:
        """The guard findings of the records matching ``where`` (its ``text`` is not used),
        counted per time bucket and kind, ordered by bucket."""
        raise _unsupported(self, "count guard findings")

    def flagged(self, where: RequestFilter, actions: Sequence[str],
                limit: int = 20) -> list[Record]:
        """The newest ``limit`` records matching ``where`` (its ``text`` is not used) with a
        guard finding whose action is one of ``actions``, newest first."""
        raise _unsupported(self, "find guarded requests")

    @abstractmethod
    def add_feedback(
        self,
        request_id: str,
        score: float | None = None,
        label: str | None = None,
        comment: str | None = None,
        source: str = "api",
        at: float | None = None,
    ) -> int:
        """Attach feedback to a stored request; returns its id. ``at`` defaults to now.

        Raises NotFound when the request is unknown, InvalidRequest when score, label and
        comment are all None."""

    @abstractmethod
    def purge(self, before: float) -> int:
        """Retention: delete the records started before ``before`` (unix seconds), with their
        payloads, tags and feedback. Returns how many records were deleted."""

    @property
    def keys(self) -> KeyStore | None:
        """The API keys kept in the same database; None when this store keeps none (the
        gateway then knows only the keys of its config)."""
        return None

    @abstractmethod
    def close(self) -> None:
        """Release the connections. The store must not be used afterwards."""


def _unsupported(store: Store, what: str) -> WardenError:
    return WardenError(f"This store ({type(store).__name__}) cannot {what}; use the SQL store "
                       "(store.url: sqlite:///... or postgresql://...).", status=501,
                       code="store_unsupported")
