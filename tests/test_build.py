"""`cookiebridge build`: static files that are the bytes `serve` sends, with the headers `serve` sends."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

import cookiebridge.assets
from cookiebridge.assets import SERVER_HEADERS, build_assets
from cookiebridge.build import BuildError, build
from cookiebridge.cli import main
from cookiebridge.config import Settings
from testsupport import free_port

PUBLIC = "https://cdn.example.com/bridge/"
# Headers that only say how this one response travelled, not what the file is.
TRANSPORT = SERVER_HEADERS | {"date", "server", "connection", "accept-ranges", "keep-alive", "transfer-encoding"}


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def tree(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def urls(settings: Settings) -> dict[str, bool]:
    """Every file name `serve` answers -> whether it is the immutable (hashed) name."""
    assets = build_assets(settings.trusted_origins, settings.cookie_names, settings.cookie_max_age)
    return {name: immutable for asset in assets for name, immutable in asset.urls.items()}


def nginx_locations(text: str) -> dict[str, dict[str, str]]:
    """location path -> headers (Content-Type from default_type) as the generated snippet sets them."""
    found = {}
    for path, body in re.findall(r"^location = (\S+) \{\n(.*?)^\}", text, re.S | re.M):
        headers = dict(re.findall(r'^    add_header (\S+) "([^"]*)" always;$', body, re.M))
        headers["Content-Type"] = re.search(r'^    default_type "([^"]*)";$', body, re.M).group(1)
        found[path] = headers
    return found


def headers_rules(text: str) -> dict[str, dict[str, str]]:
    rules: dict[str, dict[str, str]] = {}
    current = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if not line.startswith(" "):
            current = rules.setdefault(line, {})
        else:
            name, _, value = line.strip().partition(": ")
            current[name] = value
    return rules


def file_headers(response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers.items() if name.lower() not in TRANSPORT}


def lowered(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def test_same_inputs_give_byte_identical_output(settings: Settings, tmp_path: Path) -> None:
    first = build(settings, tmp_path / "one", PUBLIC, web_root="/srv/bridge")
    second = build(settings, tmp_path / "two", PUBLIC, web_root="/srv/bridge")
    assert tree(tmp_path / "one") == tree(tmp_path / "two")
    assert first.files == second.files == sorted(tree(tmp_path / "one"))
    assert first.script_tag == second.script_tag
    # Building again in place changes nothing, not even modification times (nginx derives its validators from them).
    before = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "one").iterdir()}
    time.sleep(0.01)
    assert build(settings, tmp_path / "one", PUBLIC, web_root="/srv/bridge").written == []
    assert {path.name: path.stat().st_mtime_ns for path in (tmp_path / "one").iterdir()} == before


def test_the_build_is_every_file_serve_sends_byte_for_byte(settings: Settings, client: TestClient,
                                                           tmp_path: Path) -> None:
    result = build(settings, tmp_path, PUBLIC, api=True)  # with the API beside it, as serve has
    names = urls(settings)
    assert {"iframe.html", "cookie-provider.min.js", "iframe.min.js"} <= set(names)
    for name in names:
        response = client.get("/" + name, headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200 and "content-encoding" not in response.headers
        assert (tmp_path / name).read_bytes() == response.content, name
        for encoding, suffix in (("gzip", ".gz"), ("br", ".br")):
            copy = tmp_path / (name + suffix)
            if encoding == "br" and not result.brotli:
                assert not copy.exists()
                continue
            with client.stream("GET", "/" + name, headers={"Accept-Encoding": encoding}) as streamed:
                assert streamed.headers["content-encoding"] == encoding
                assert copy.read_bytes() == b"".join(streamed.iter_raw()), copy.name


def test_gzip_copies_are_deterministic_and_decompress_to_the_file(settings: Settings, tmp_path: Path) -> None:
    import gzip

    build(settings, tmp_path, PUBLIC)
    for gz in tmp_path.glob("*.gz"):
        data = gz.read_bytes()
        assert data[4:8] == b"\0\0\0\0"  # mtime 0
        assert gzip.decompress(data) == (tmp_path / gz.name.removesuffix(".gz")).read_bytes()


def test_without_with_api_the_page_says_no_api_answers(settings: Settings, client: TestClient,
                                                       tmp_path: Path) -> None:
    def config(html: str) -> dict:
        return json.loads(html.split('id="cookiebridge-config">', 1)[1].split("</script>", 1)[0])

    build(settings, tmp_path / "static", PUBLIC)
    build(settings, tmp_path / "api", PUBLIC, api=True)
    assert config((tmp_path / "static" / "iframe.html").read_text())["api"] is False
    assert config((tmp_path / "api" / "iframe.html").read_text())["api"] is True
    assert config(client.get("/iframe.html").text)["api"] is True
    assert "location /bridge/api/ {" in (tmp_path / "api" / "nginx.conf").read_text()
    assert "api/" not in (tmp_path / "static" / "nginx.conf").read_text()


def test_manifest_maps_every_name_to_its_hashed_file_and_integrity(settings: Settings, tmp_path: Path) -> None:
    build(settings, tmp_path, PUBLIC)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["publicUrl"] == PUBLIC and manifest["api"] is False
    stable = {name for name, immutable in urls(settings).items() if not immutable}
    assert set(manifest["files"]) == stable
    for name, entry in manifest["files"].items():
        served = (tmp_path / entry["file"]).read_bytes()
        assert served == (tmp_path / name).read_bytes()
        assert entry["integrity"] == sri(served)
        assert entry["url"] == PUBLIC + entry["file"]
        assert entry["bytes"] == len(served) and entry["gzipBytes"] == len((tmp_path / (name + ".gz")).read_bytes())
        if name.endswith(".js"):
            assert re.fullmatch(re.escape(name.removesuffix(".min.js")) + r"\.[0-9a-f]{12}\.min\.js", entry["file"])
    # The page loads its script by hashed name with a matching integrity value.
    page = (tmp_path / "iframe.html").read_text()
    script = manifest["files"]["iframe.min.js"]
    assert f'<script src="{script["file"]}" integrity="{script["integrity"]}"></script>' in page


def test_nginx_snippet_and_headers_file_carry_the_headers_serve_sends(settings: Settings, client: TestClient,
                                                                     tmp_path: Path) -> None:
    build(settings, tmp_path, PUBLIC, web_root="/srv/bridge")
    nginx = nginx_locations((tmp_path / "nginx.conf").read_text())
    rules = headers_rules((tmp_path / "_headers").read_text())
    names = urls(settings)
    assert set(nginx) == set(rules) == {"/bridge/" + name for name in names}
    for name, immutable in names.items():
        served = file_headers(client.get("/" + name))
        assert lowered(nginx["/bridge/" + name]) == served, name
        assert lowered(rules["/bridge/" + name]) == served, name
        assert served["cache-control"] == ("public, max-age=31536000, immutable" if immutable else "public, max-age=300")
    page = lowered(nginx["/bridge/iframe.html"])
    assert page["content-security-policy"].endswith("frame-ancestors " + " ".join(settings.trusted_origins))
    assert page["x-content-type-options"] == "nosniff" and page["referrer-policy"] == "no-referrer"
    for name in names:
        if name.endswith(".js"):
            assert lowered(nginx["/bridge/" + name])["access-control-allow-origin"] == "*"
    assert "alias /srv/bridge/iframe.html;" in (tmp_path / "nginx.conf").read_text()


def test_without_brotli_there_are_no_br_copies_and_the_cli_says_so(settings: Settings, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cookiebridge.assets, "brotli", None)
    result = build(settings, tmp_path / "plain", PUBLIC)
    assert not result.brotli and not list((tmp_path / "plain").glob("*.br"))
    assert list((tmp_path / "plain").glob("*.gz"))
    run = CliRunner().invoke(main, ["build", "--out", str(tmp_path / "cli"), "--public-url", PUBLIC,
                                    "--trusted-origin", "https://a.example"], env={"COOKIEBRIDGE_SECRET_KEY": ""})
    assert run.exit_code == 0, run.output
    assert "brotli is not installed" in run.stderr


def test_cli_prints_the_script_tag_to_paste(tmp_path: Path) -> None:
    run = CliRunner().invoke(main, ["build", "--out", str(tmp_path), "--public-url", "https://bridge.example.com",
                                    "--trusted-origin", "https://a.example", "--trusted-origin", "https://b.example"])
    assert run.exit_code == 0, run.output
    tag = run.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r'<script src="https://bridge\.example\.com/(cookie-provider\.[0-9a-f]{12}\.min\.js)" '
                         r'integrity="(sha384-[A-Za-z0-9+/]{64})" crossorigin="anonymous"></script>', tag)
    assert match, tag
    assert match.group(2) == sri((tmp_path / match.group(1)).read_bytes())
    assert "IFRAME_URL: https://bridge.example.com/iframe.html" in run.stdout
    assert "secret_key" not in run.stderr  # a static build signs nothing


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--public-url", PUBLIC], "cookiebridge: error: --out is required, e.g. cookiebridge build --out dist "
                                   "--public-url https://bridge.example.com/"),
        (["--out", "OUT"], "cookiebridge: error: --public-url is required, e.g. cookiebridge build --out dist "
                           "--public-url https://bridge.example.com/"),
        (["--out", "OUT", "--public-url", "ftp://cdn.example.com/"],
         "cookiebridge: error: public URL 'ftp://cdn.example.com/' must be an absolute https URL, "
         "e.g. https://bridge.example.com/"),
        (["--out", "OUT", "--public-url", "https://cdn.example.com/b?v=1"],
         "cookiebridge: error: public URL 'https://cdn.example.com/b?v=1' must have no query, fragment or "
         "credentials: give the folder the files are served from, e.g. https://cdn.example.com/bridge/"),
        (["--out", "OUT", "--public-url", "http://cdn.example.com/"],
         "cookiebridge: error: public URL: origin 'http://cdn.example.com' uses plain http: cookies marked Secure "
         "need https, write 'https://cdn.example.com'"),
        (["--out", "OUT", "--public-url", PUBLIC, "--nginx-root", "relative/dir"],
         "cookiebridge: error: nginx root 'relative/dir' must be an absolute path without spaces, quotes, $, {, }, "
         "; or #"),
        (["--out", "FILE", "--public-url", PUBLIC], "cookiebridge: error: --out 'FILE' is a file, not a directory"),
        (["--out", "OUT", "--public-url", PUBLIC, "--trusted-origin", "domain-a.com"],
         "cookiebridge: error: trusted_origins: origin 'domain-a.com' has no scheme: write 'https://domain-a.com'"),
    ],
)
def test_bad_options_are_one_line_and_status_2(tmp_path: Path, args: list[str], line: str) -> None:
    (tmp_path / "FILE").write_text("not a directory")
    args = [str(tmp_path / arg) if arg in ("OUT", "FILE") else arg for arg in args]
    line = line.replace("'FILE'", repr(str(tmp_path / "FILE")))
    if "--trusted-origin" not in args:
        args += ["--trusted-origin", "https://a.example"]
    run = CliRunner().invoke(main, ["build", *args])
    assert run.exit_code == 2, run.output
    assert run.stderr.strip() == line
    assert run.stdout == ""
    assert not (tmp_path / "OUT").exists()


def test_public_url_checks() -> None:
    from cookiebridge.build import check_public_url

    assert check_public_url("https://Bridge.Example.com") == "https://bridge.example.com/"
    assert check_public_url("https://cdn.example.com:8443/a/b") == "https://cdn.example.com:8443/a/b/"
    assert check_public_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/"
    for bad in ("https://cdn.example.com/a//b/", "https://cdn.example.com/../x/", "https://cdn.example.com/a b/",
                "https://cdn.example.com/$x/", "https://user:pw@cdn.example.com/", "cdn.example.com"):
        with pytest.raises(BuildError):
            check_public_url(bad)


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx is not installed (apt-get install -y nginx)")
def test_nginx_serving_the_build_answers_like_serve(settings: Settings, client: TestClient, tmp_path: Path) -> None:
    """The snippet in a real nginx: same bytes, same file headers, gzip copies negotiated, 304 with the headers."""
    out = Path(tempfile.mkdtemp(prefix="cookiebridge-build-"))  # readable by nginx's worker user
    os.chmod(out, 0o755)
    try:
        build(settings, out, "http://127.0.0.1/", api=True)
        for path in out.iterdir():
            os.chmod(path, 0o644)
        port = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"worker_processes 1; daemon off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\n"
            "events { worker_connections 64; }\n"
            f"http {{ access_log off; client_body_temp_path {tmp_path}; proxy_temp_path {tmp_path}; "
            f"fastcgi_temp_path {tmp_path}; uwsgi_temp_path {tmp_path}; scgi_temp_path {tmp_path};\n"
            f"  server {{ listen 127.0.0.1:{port}; include {out}/nginx.conf; }} }}\n")
        process = subprocess.Popen(["nginx", "-c", str(conf)], stderr=subprocess.PIPE)
        try:
            base = f"http://127.0.0.1:{port}/"
            deadline = time.monotonic() + 10
            while True:
                try:
                    urllib.request.urlopen(base + "iframe.html", timeout=1).close()
                    break
                except (urllib.error.URLError, ConnectionError):
                    assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
                    time.sleep(0.05)
            for name in urls(settings):
                for encoding in ("identity", "gzip"):
                    request = urllib.request.Request(base + name, headers={"Accept-Encoding": encoding})
                    with urllib.request.urlopen(request) as response:
                        body, headers = response.read(), dict(response.headers.items())
                    served = client.get("/" + name, headers={"Accept-Encoding": encoding})
                    with client.stream("GET", "/" + name, headers={"Accept-Encoding": encoding}) as streamed:
                        raw = b"".join(streamed.iter_raw())
                    assert body == raw, (name, encoding)
                    assert {k.lower(): v for k, v in headers.items() if k.lower() not in TRANSPORT} \
                        == file_headers(served), (name, encoding)
                    assert headers.get("Content-Encoding") == served.headers.get("content-encoding")
                    assert headers["Vary"] == "Accept-Encoding"
                    revalidate = urllib.request.Request(base + name, headers={"If-None-Match": headers["ETag"],
                                                                              "Accept-Encoding": encoding})
                    with pytest.raises(urllib.error.HTTPError) as not_modified:
                        urllib.request.urlopen(revalidate)
                    assert not_modified.value.code == 304
                    assert not_modified.value.headers["Cache-Control"] == served.headers["cache-control"]
        finally:
            process.terminate()
            process.wait(timeout=10)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_serve_negotiates_the_precompressed_copies(client: TestClient) -> None:
    """The copies `build` writes are the ones `serve` picks by Accept-Encoding (br first, then gzip)."""
    brotli = cookiebridge.assets.brotli is not None

    def coding(accept: str) -> str | None:
        with client.stream("GET", "/cookie-provider.min.js", headers={"Accept-Encoding": accept}) as response:
            assert response.headers["vary"] == "Accept-Encoding"
            assert int(response.headers["content-length"]) == len(b"".join(response.iter_raw()))
            return response.headers.get("content-encoding")

    assert coding("identity") is None
    assert coding("gzip, deflate") == "gzip"
    assert coding("gzip, deflate, br, zstd") == ("br" if brotli else "gzip")
    assert coding("br;q=0, gzip;q=0.5") == "gzip"
    assert coding("gzip;q=0, deflate") is None
    assert coding("*") == ("br" if brotli else "gzip")
    assert coding("br;q=0, *") == "gzip"
    assert coding("gzip;q=bogus") is None
    # Each copy has its own validator: a 304 only for the copy the client holds.
    gz = client.get("/iframe.html", headers={"Accept-Encoding": "gzip"})
    plain = client.get("/iframe.html", headers={"Accept-Encoding": "identity"})
    assert gz.headers["etag"] != plain.headers["etag"]
    again = client.get("/iframe.html", headers={"Accept-Encoding": "gzip", "If-None-Match": gz.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and "content-encoding" not in again.headers
    assert again.headers["vary"] == "Accept-Encoding, Sec-Fetch-Storage-Access"
    assert again.headers["cache-control"] == "public, max-age=300"
    assert client.get("/iframe.html", headers={"Accept-Encoding": "identity",
                                               "If-None-Match": gz.headers["etag"]}).status_code == 200


def test_serve_fast_path_answers_head_and_leaves_other_methods_to_starlette(client: TestClient) -> None:
    head = client.head("/cookie-provider.min.js", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(client.get("/cookie-provider.min.js").content)
    refused = client.post("/iframe.html")
    assert refused.status_code == 405 and refused.json()["error"] == "method-not-allowed"


def test_a_public_host_with_only_the_demo_origins_is_refused(tmp_path: Path) -> None:
    """Nothing configured means the loopback demo sites: fine for a local build, a trap for a real host."""
    run = CliRunner().invoke(main, ["build", "--out", str(tmp_path / "public"), "--public-url", PUBLIC])
    assert run.exit_code == 2, run.output
    assert run.stderr.strip() == (
        f"cookiebridge: error: public URL '{PUBLIC}' is not on this machine but no trusted origins are configured "
        "(only the local demo sites): name your sites with --trusted-origin https://domain-a.com (repeat the flag "
        "for each), or COOKIEBRIDGE_TRUSTED_ORIGINS")
    assert not (tmp_path / "public").exists()
    local = CliRunner().invoke(main, ["build", "--out", str(tmp_path / "local"), "--public-url",
                                      "http://127.0.0.1:8000/"])
    assert local.exit_code == 0, local.output
    assert "the iframe page trusts the local demo sites" in local.stderr


def test_the_summary_says_whether_handoff_and_identity_are_on_and_never_warns_about_keys(tmp_path: Path) -> None:
    args = ["build", "--public-url", PUBLIC, "--trusted-origin", "https://a.example"]
    for env in ({"COOKIEBRIDGE_SECRET_KEY": ""}, {"COOKIEBRIDGE_SECRET_KEY": "changeme-changeme-changeme"}):
        static = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "static")], env=env)
        assert static.exit_code == 0, static.output
        assert "Link handoff and signed identity are off (no --with-api)" in static.stdout
        api = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "api"), "--with-api"], env=env)
        assert api.exit_code == 0, api.output
        assert f"`cookiebridge serve` must answer {PUBLIC}api/v1/" in api.stdout and "are off" not in api.stdout
        assert "secret_key" not in static.stderr + api.stderr  # a static build signs nothing, with or without API


def test_resume_is_said_and_proxied_only_with_the_api(settings: Settings, tmp_path: Path) -> None:
    """A page with resume on tells the provider; the resume page is serve's, so nginx sends it there."""
    def config(html: str) -> dict:
        return json.loads(html.split('id="cookiebridge-config">', 1)[1].split("</script>", 1)[0])

    resume = dataclasses.replace(settings, resume=True)
    build(resume, tmp_path / "api", PUBLIC, api=True)
    build(resume, tmp_path / "static", PUBLIC)
    build(settings, tmp_path / "off", PUBLIC, api=True)
    assert config((tmp_path / "api" / "iframe.html").read_text())["resume"] is True
    assert "location = /bridge/resume {" in (tmp_path / "api" / "nginx.conf").read_text()
    for folder in ("static", "off"):  # no serve beside the files, or resume off: no resume page to offer
        assert config((tmp_path / folder / "iframe.html").read_text())["resume"] is False
        assert "location = /bridge/resume" not in (tmp_path / folder / "nginx.conf").read_text()
