"""The link-handoff lab (issue 12): two small trusted sites and a foreign one, pages as files beside this module.

lab sites    https://127.0.0.2:P, https://127.0.0.3:P   lab.html (the provider from the bridge, a session cookie,
                                                         saveCookie(), a link to the other site in every way),
                                                         /redirect?to=URL (an open redirect), /go/out (a redirect to
                                                         the catcher that does not look like one)
foreign      https://127.0.0.4:P                         planted.html?code= (a link to B carrying a code),
                                                         driveby.html (its server mints a code, the page
                                                         location.replace()s to B)
catcher      https://127.0.0.4:Q                         landing.html: reports what it sees to its server, which
                                                         redeems any code it gets with a forged Origin and referrer

Everything the foreign servers see is kept in `Foreign.seen` / `Foreign.requests` for the tests to read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

PAGES = Path(__file__).parent
HANDOFF = "cb-handoff="


def render(page: str, **values: str) -> str:
    """A page of this folder with each {{key}} replaced; a key the page names but `values` lacks is an error."""
    html = (PAGES / page).read_text()
    for key, value in values.items():
        html = html.replace("{{" + key + "}}", value)
    if "{{" in html:
        missing = html[html.index("{{"):].split("}}")[0] + "}}"
        raise KeyError(f"{page}: no value for {missing}; pass it to render()")
    return html


def _html(html: str, **headers: str) -> HTMLResponse:
    return HTMLResponse(html, headers={"Cache-Control": "no-store", **headers})


def mint(bridge: str, source: str, destination: str, name: str, value: str) -> str:
    """A handoff code as any HTTP client can get one: `Origin: <source>` is just a header."""
    response = httpx.post(f"{bridge}/api/v1/handoff", headers={"Origin": source}, verify=False,
                          content=json.dumps({"name": name, "value": value, "destination": destination}))
    response.raise_for_status()
    return str(response.json()["code"])


def redeem(bridge: str, code: str, destination: str, referrer: str) -> httpx.Response:
    """Redeem as a forger would: any Origin, any referrer in the body."""
    return httpx.post(f"{bridge}/api/v1/handoff/redeem", headers={"Origin": destination}, verify=False,
                      content=json.dumps({"code": code, "referrer": referrer}))


def site_app(bridge: str, sites: list[str], catcher: str, cookie: str) -> Starlette:
    """One of the two trusted lab sites (which one: the request's host)."""
    async def lab(request: Request) -> Response:
        here = f"{request.url.scheme}://{request.url.netloc}"
        other = next(site for site in sites if site != here)
        html = render("lab.html", here=here, other=other, other_json=json.dumps(other), bridge=bridge,
                      bridge_json=json.dumps(bridge), cookie=json.dumps(cookie),
                      catcher_query=quote(catcher + "/landing", safe=""))
        # ?rp=no-referrer: the site sends Referrer-Policy: no-referrer with its pages.
        policy = request.query_params.get("rp")
        return _html(html, **({"Referrer-Policy": policy} if policy else {}))

    async def open_redirect(request: Request) -> Response:
        return RedirectResponse(request.query_params["to"], status_code=302)

    async def go_out(request: Request) -> Response:
        return RedirectResponse(catcher + "/landing", status_code=302)

    return Starlette(routes=[Route("/lab.html", lab), Route("/redirect", open_redirect), Route("/go/out", go_out)])


@dataclass
class Foreign:
    """The attacker's servers: their app, and what they have seen."""
    bridge: str
    site_a: str
    site_b: str
    cookie: str
    seen: list[dict[str, Any]] = field(default_factory=list)  # landing-page reports, with the redeem attempt
    requests: list[str] = field(default_factory=list)  # "METHOD path?query" of every request
    minted: list[str] = field(default_factory=list)  # codes driveby.html's server minted

    def app(self) -> Starlette:
        async def log(request: Request) -> None:
            query = f"?{request.url.query}" if request.url.query else ""
            self.requests.append(f"{request.method} {request.url.path}{query}")

        async def planted(request: Request) -> Response:
            await log(request)
            target = f"{self.site_b}/lab.html#{HANDOFF}{request.query_params['code']}"
            return _html(render("planted.html", target=target))

        async def driveby(request: Request) -> Response:
            await log(request)
            code = await self._mint(request.query_params.get("value", "attacker-session"))
            self.minted.append(code)
            return _html(render("driveby.html", target_json=json.dumps(f"{self.site_b}/lab.html#{HANDOFF}{code}")))

        async def landing(request: Request) -> Response:
            await log(request)
            return _html(render("landing.html"))

        async def seen(request: Request) -> Response:
            await log(request)
            report: dict[str, Any] = json.loads(await request.body())
            code = report["hash"].split(HANDOFF, 1)[1].split("&")[0] if HANDOFF in report["hash"] else None
            if code:  # what the attacker's server does with a code it caught: forge what the gate checks
                async with httpx.AsyncClient(verify=False) as client:
                    answer = await client.post(f"{self.bridge}/api/v1/handoff/redeem",
                                               headers={"Origin": self.site_b},
                                               content=json.dumps({"code": code, "referrer": self.site_a + "/"}))
                report["redeemed"] = {"status": answer.status_code, "body": answer.json()}
            self.seen.append(report)
            return JSONResponse(report)

        return Starlette(routes=[Route("/planted.html", planted), Route("/driveby.html", driveby),
                                 Route("/landing", landing), Route("/seen", seen, methods=["POST"])])

    async def _mint(self, value: str) -> str:
        async with httpx.AsyncClient(verify=False) as client:
            response = await client.post(f"{self.bridge}/api/v1/handoff", headers={"Origin": self.site_a},
                                         content=json.dumps({"name": self.cookie, "value": value,
                                                             "destination": self.site_b}))
        response.raise_for_status()
        return str(response.json()["code"])


@dataclass(frozen=True)
class LabTopology:
    bridge: str
    site_a: str
    site_b: str
    foreign: str
    catcher: str
    spy: Foreign
    logs: Path
