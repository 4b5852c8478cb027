"""The widget-extension scripts (chat-finalizer, web-engagement) are built and served like the bridge's own."""

import pytest
from starlette.testclient import TestClient

from cookiebridge.assets import SCRIPTS, build_script, minify
from cookiebridge.resources import resource_dir

EXTENSIONS = {
    "chat-finalizer": ("window.ChatFinalizer", "window.initChatFinalizer"),
    "web-engagement": ("window.WebEngagementContext",),
}


@pytest.mark.parametrize("name", sorted(EXTENSIONS))
def test_served_minified_with_banner_and_a_hashed_copy(client: TestClient, name: str) -> None:
    assert name in SCRIPTS
    stable = client.get(f"/{name}.min.js")
    assert stable.status_code == 200
    assert stable.headers["content-type"] == "text/javascript; charset=utf-8"
    assert stable.text.startswith(f"/*! cookiebridge {name} | MIT */")
    assert "\n  " not in stable.text
    for exported in EXTENSIONS[name]:
        assert exported + "=" in stable.text.replace(" ", "")
    hashed = client.get("/" + build_script(name).hashed_name)
    assert hashed.content == stable.content
    assert hashed.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("name", sorted(EXTENSIONS))
def test_one_closure_without_globals_beyond_its_api(name: str) -> None:
    source = (resource_dir("static") / f"{name}.js").read_text(encoding="utf-8")
    body = minify(source).split("*/", 1)[1].strip()
    assert body.startswith("(function(window){'use strict';") and body.endswith("})(window);")
