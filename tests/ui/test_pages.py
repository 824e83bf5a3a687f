"""The dashboard's pages through real HTTP: each needs a session (303 to the login page without
one), admins see every page and the keys nav, operators and viewers every page but keys (a 403
page that says so), and the assets are served from the package, never from a CDN."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.helpers import GatewayThread
from tests.ui.http import call, login
from warden.ui.html import imports
from warden.ui.pages import STATIC_DIR

ADMIN = "pages-admin-key-01"
OPERATOR = "pages-operator-001"
VIEWER = "pages-viewer-00001"
PAGES = ["/ui", "/ui/", "/ui/overview", "/ui/requests", "/ui/requests/some-id", "/ui/models",
         "/ui/guardrails", "/ui/costs", "/ui/keys"]
NAV = ["overview", "requests", "models", "guardrails", "costs"]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    folder = tmp_path_factory.mktemp("pages")
    with GatewayThread({
        "admin_key": ADMIN, "server": {"data_dir": str(folder / "data")},
        "keys": [{"key": OPERATOR, "name": "ops", "role": "operator"},
                 {"key": VIEWER, "name": "viewer", "role": "viewer"}],
        "models": [{"name": "echo", "deployments": [{"id": "f", "provider": "fake"}]}],
    }) as g:
        yield g


@pytest.mark.parametrize("path", [*PAGES, "/ui/requests?model=a&status=error", "/ui/nowhere"])
def test_a_page_without_a_session_goes_to_the_login(gw: GatewayThread, path: str) -> None:
    answer = call(gw.url, "GET", path)
    assert answer.status == 303
    location = answer.headers["location"]
    assert location.startswith("/ui/login?next=")
    assert unquote(location.removeprefix("/ui/login?next=")) == path


def test_the_login_page_has_its_form_and_no_error(gw: GatewayThread) -> None:
    answer = call(gw.url, "GET", "/ui/login?next=/ui/costs")
    assert answer.status == 200
    for testid in ("login-key", "login-submit"):
        assert f'data-testid="{testid}"' in answer.text
    assert 'data-testid="login-error"' not in answer.text
    assert 'value="/ui/costs"' in answer.text
    # Logged in already: straight to the page.
    again = call(gw.url, "GET", "/ui/login?next=/ui/costs", cookie=login(gw.url, VIEWER))
    assert again.status == 303 and again.headers["location"] == "/ui/costs"


def test_an_admin_sees_every_page_and_the_keys_nav(gw: GatewayThread) -> None:
    cookie = login(gw.url, ADMIN)
    for path in PAGES:
        answer = call(gw.url, "GET", path, cookie=cookie)
        assert answer.status == 200, path
        assert answer.headers["content-type"].startswith("text/html")
        for name in [*NAV, "keys"]:
            assert f'data-testid="nav-{name}"' in answer.text, (path, name)
        assert 'data-testid="logout"' in answer.text
        assert "default-src 'self'" in answer.headers["content-security-policy"]
        assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("key", [OPERATOR, VIEWER])
def test_operators_and_viewers_see_all_but_the_keys(gw: GatewayThread, key: str) -> None:
    cookie = login(gw.url, key)
    for path in PAGES[:-1]:
        answer = call(gw.url, "GET", path, cookie=cookie)
        assert answer.status == 200, path
        assert 'data-testid="nav-keys"' not in answer.text
        assert all(f'data-testid="nav-{name}"' in answer.text for name in NAV)
    keys = call(gw.url, "GET", "/ui/keys", cookie=cookie)
    assert keys.status == 403
    assert 'data-testid="forbidden"' in keys.text
    assert "key-create-submit" not in keys.text and 'data-testid="nav-keys"' not in keys.text


def test_an_unknown_page_says_so(gw: GatewayThread) -> None:
    answer = call(gw.url, "GET", "/ui/nowhere", cookie=login(gw.url, VIEWER))
    assert answer.status == 404
    assert 'data-testid="page-error"' in answer.text and "/ui/nowhere" in answer.text


def test_the_trace_page_escapes_the_request_id(gw: GatewayThread) -> None:
    answer = call(gw.url, "GET", "/ui/requests/%3Cscript%3Ex", cookie=login(gw.url, ADMIN))
    assert answer.status == 200
    assert "<script>x" not in answer.text and "&lt;script&gt;x" in answer.text


def test_every_page_loads_only_assets_of_the_gateway(gw: GatewayThread) -> None:
    cookie = login(gw.url, ADMIN)
    seen: set[str] = set()
    for path in [*PAGES, "/ui/login"]:
        text = call(gw.url, "GET", path, cookie=cookie if path != "/ui/login" else None).text
        for ref in re.findall(r'(?:src|href)="([^"]+)"', text):
            assert not ref.startswith(("http:", "https:", "//")), (path, ref)
            if ref.startswith("/ui/static/"):
                seen.add(ref)
    assert {"/ui/static/favicon.svg", "/ui/static/vendor/uPlot.iife.min.js",
            "/ui/static/css/warden.css", "/ui/static/js/overview.js",
            "/ui/static/js/live.js"} <= seen
    for ref in seen:
        answer = call(gw.url, "GET", ref)  # assets need no session (the login page uses them)
        assert answer.status == 200, ref
        assert answer.headers["cache-control"] == "no-cache"


def test_the_scripts_import_only_local_modules_and_each_page_preloads_them() -> None:
    scripts = sorted((STATIC_DIR / "js").glob("*.js"))
    assert len(scripts) >= 10
    for script in scripts:
        targets = re.findall(r"from '([^']+)'", script.read_text())
        for target in targets:
            assert target.startswith("./") and (script.parent / target).is_file(), (script, target)
        assert set(targets) <= {f"./{name}.js" for name in imports(script.stem)}, script
    assert imports("overview") == ("api", "chart", "dom", "format", "live")
    assert (STATIC_DIR / "vendor" / "uPlot.LICENSE").read_text().startswith("The MIT License")


def test_each_page_template_names_its_script() -> None:
    templates = Path(STATIC_DIR).parent / "templates"
    for name in ("overview", "requests", "trace", "models", "guardrails", "costs", "keys", "login"):
        assert (templates / f"{name}.html").is_file()
        assert (STATIC_DIR / "js" / f"{name}.js").is_file()
