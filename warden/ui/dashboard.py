"""The dashboard composed: its pages, login and live overview, built once per gateway."""

from __future__ import annotations

from starlette.routing import BaseRoute

from warden.access.session import SessionSecrets
from warden.runtime import RuntimeHolder
from warden.store.base import Store
from warden.ui.live import LiveApi, LiveHub
from warden.ui.login import Login
from warden.ui.overview import Overview
from warden.ui.pages import Pages


class Dashboard:
    """The dashboard of one gateway; ``start`` and ``close`` with the app."""

    def __init__(self, holder: RuntimeHolder, store: Store, secrets: SessionSecrets) -> None:
        self.overview = Overview(store, lambda: holder.current.in_flight)
        self.hub = LiveHub(self.overview.snapshot, self.overview.warm)
        self.pages = Pages(holder)
        self._login = Login(holder, secrets, self.pages)
        self.live = LiveApi(holder, self.hub)

    def routes(self) -> list[BaseRoute]:
        # The pages last: they end with the catch-all of unknown /ui paths.
        return [*self.live.routes(), *self._login.routes(), *self.pages.routes()]

    async def start(self) -> None:
        await self.hub.start()

    async def close(self) -> None:
        await self.hub.close()
