"""Who a request comes from, and what each role may do.

    role       /v1 (models)   read /api     operate: reload, feedback   administer: API keys
    admin      yes            all teams     yes                         yes
    operator   -              its team      yes                         -
    viewer     -              its team      -                           -
    app        yes            -             -                           -

"Its team": a key that is not an admin and has a team reads only the records of that team (a
key without a team reads them all). Reading covers GET /api/requests, /api/requests/{id},
/api/stats, /api/resources, /api/deployments and /api/config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from warden.errors import PermissionDenied
from warden.observe.record import PayloadPolicy

Role = Literal["admin", "operator", "viewer", "app"]
ROLES: tuple[Role, ...] = get_args(Role)

Action = Literal["call_models", "read", "operate", "administer"]

GRANTS: Mapping[Role, frozenset[Action]] = {
    "admin": frozenset({"call_models", "read", "operate", "administer"}),
    "operator": frozenset({"read", "operate"}),
    "viewer": frozenset({"read"}),
    "app": frozenset({"call_models"}),
}

_WHAT: Mapping[Action, str] = {
    "call_models": "call the models under /v1",
    "read": "read the admin API (records, statistics, deployments, config)",
    "operate": "change the running gateway (reload, feedback)",
    "administer": "use the admin-only endpoints (API keys)",
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The holder of an API key as the pipeline and the API see it (never the token).

    ``id`` is public: records, logs and the API name a key by it. ``tags`` are added to the
    record of each request made with the key; ``payloads``, when set, replaces the store's
    payload policy for those records."""

    id: str
    name: str
    role: Role
    team: str | None = None
    models: tuple[str, ...] | None = None  # None: every model
    tags: Mapping[str, str] = field(default_factory=dict)
    payloads: PayloadPolicy | None = None
    guard: str | None = None  # the guard policy of the key's requests (config keys)

    def may(self, action: Action) -> bool:
        return action in GRANTS[self.role]

    def require(self, action: Action) -> None:
        """Raise PermissionDenied (403) unless this key's role grants ``action``."""
        if self.may(action):
            return
        roles = " or ".join(r for r in ROLES if action in GRANTS[r])
        raise PermissionDenied(
            f"The key '{self.name}' ({self.id}) has role {self.role}, which may not "
            f"{_WHAT[action]}; use a key with role {roles}.",
            code="role_not_allowed",
        )

    @property
    def team_scope(self) -> str | None:
        """The one team whose records this key may read; None: every team."""
        return None if self.role == "admin" else self.team


ADMIN = Principal(id="admin", name="admin", role="admin")
"""The holder of the configured admin key (``admin_key`` or WARDEN_ADMIN_KEY)."""
