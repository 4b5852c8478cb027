"""`cookiebridge build`: every file the bridge serves, as static files for a CDN or web server, plus the headers to
send with them (an nginx snippet and a `_headers` file) and the `<script>` tag for the sites.

The files come from `build_assets`, the code path `serve` uses, and the headers from `Asset.response_headers`, so a
static host configured with this output answers with the bytes and headers `serve` would. Same inputs, same output
byte for byte: nothing here depends on the time, the order of a directory listing or a random value.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .assets import IFRAME_PAGE, Asset, build_assets
from .config import Settings
from .origins import OriginError, normalise_origin

PROVIDER = "cookie-provider.min.js"
MANIFEST = "manifest.json"
NGINX = "nginx.conf"
HEADERS_FILE = "_headers"
# What an nginx quoted string or a _headers line cannot carry as is: quotes, variables ($), escapes, line breaks.
_UNSAFE_HEADER_VALUE = re.compile(r'["$\\\x00-\x1f\x7f]')


# `serve` answers Storage Access Headers on iframe.html (a different header per request, for trusted embedders
# only); static headers cannot, and the build does not pretend to.
_NO_STORAGE_ACCESS_HEADERS = (
    "# Not sent by these static files: Storage Access Headers (Activate-Storage-Access for a request with",
    "# Sec-Fetch-Storage-Access, and Vary on it), which only `cookiebridge serve` answers. Without them a browser",
    "# whose customer granted the bridge storage access still uses it: iframe.min.js asks for it when it starts.",
)


class BuildError(ValueError):
    """Bad build input; the message is one line naming the value and the fix."""


@dataclass
class BuildResult:
    out_dir: Path
    public_url: str
    files: list[str]  # every file of the build, relative to out_dir, sorted
    written: list[str]  # those whose content changed (others keep their modification time, so nginx's validators)
    brotli: bool  # whether .br copies were made
    script_tag: str
    iframe_url: str


def check_public_url(public_url: str) -> str:
    """The URL of the directory the files will be served from, normalised to end with '/'."""
    parts = urlsplit(public_url.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise BuildError(f"public URL {public_url!r} must be an absolute https URL, e.g. https://bridge.example.com/")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise BuildError(f"public URL {public_url!r} must have no query, fragment or credentials: "
                         "give the folder the files are served from, e.g. https://cdn.example.com/bridge/")
    try:
        origin = normalise_origin(f"{parts.scheme}://{parts.netloc}")
    except OriginError as error:
        raise BuildError(f"public URL: {error}") from None
    path = parts.path or "/"
    if not path.endswith("/"):
        path += "/"
    if "//" in path or any(segment in (".", "..") for segment in path.split("/")):
        raise BuildError(f"public URL {public_url!r} has an empty, '.' or '..' path segment")
    if _UNSAFE_HEADER_VALUE.search(path) or re.search(r"[\s{};#]", path):
        raise BuildError(f"public URL {public_url!r} has characters a web server location cannot hold")
    return origin + path


def is_loopback(public_url: str) -> bool:
    host = urlsplit(public_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_trusted_origins(settings: Settings, public_url: str) -> None:
    """A bundle for a real host must not trust the loopback demo sites that stand in when nothing is configured."""
    if settings.embedded_default and not is_loopback(public_url):
        raise BuildError(f"public URL {public_url!r} is not on this machine but no trusted origins are configured "
                         "(only the local demo sites): name your sites with --trusted-origin https://domain-a.com "
                         "(repeat the flag for each), or COOKIEBRIDGE_TRUSTED_ORIGINS")


def _check_header_values(assets: list[Asset]) -> None:
    for asset in assets:
        for immutable in asset.urls.values():
            for name, value in asset.response_headers(immutable=immutable).items():
                if _UNSAFE_HEADER_VALUE.search(value):
                    raise BuildError(f"header {name} of {asset.name} holds a character the nginx snippet and "
                                     f"_headers file cannot carry: {value!r}")


def _files(assets: list[Asset]) -> dict[str, bytes]:
    """Every file of the build, relative name -> bytes: each name of each asset, and its precompressed copies."""
    files: dict[str, bytes] = {}
    for asset in assets:
        for name in asset.urls:
            files[name] = asset.body
            for encoding, body in asset.encodings.items():
                files[name + (".gz" if encoding == "gzip" else "." + encoding)] = body
    return files


def _manifest(assets: list[Asset], public_url: str, api: bool) -> dict:
    entries = {}
    for asset in assets:
        served = asset.hashed_name or asset.name
        entries[asset.name] = {
            "file": served,
            "url": public_url + served,
            "integrity": asset.integrity,
            "bytes": len(asset.body),
            **{f"{encoding}Bytes": len(body) for encoding, body in asset.encodings.items()},
        }
    return {"publicUrl": public_url, "api": api, "files": entries}


def nginx_snippet(assets: list[Asset], public_url: str, web_root: str, api: bool, resume: bool = False) -> str:
    """Exact-match location blocks for every URL of the build, to include in the server block of the public URL's
    host. Content-Type comes from default_type (with its charset, as `serve` sends it); the validators from nginx."""
    path = urlsplit(public_url).path
    root = web_root.rstrip("/") or "/"
    lines = [
        "# cookiebridge: generated by `cookiebridge build`; do not edit, build again.",
        f"# Include inside the server {{ }} block that serves {public_url}",
        f"# Files: {root}/ (cookiebridge build --nginx-root). nginx adds ETag and Last-Modified itself.",
        "# gzip_static sends the prebuilt .gz copy to clients that accept gzip (module in Debian's nginx);",
        "# with the ngx_brotli module (Debian: libnginx-mod-http-brotli-static) uncomment brotli_static.",
        "# add_header ... always: the headers are sent with 304 and error answers too.",
        *_NO_STORAGE_ACCESS_HEADERS,
    ]
    for asset in assets:
        for name, immutable in asset.urls.items():
            headers = asset.response_headers(immutable=immutable)
            lines += ["", f"location = {path}{name} {{", f"    alias {root}/{name};",
                      "    types { }", f'    default_type "{headers.pop("Content-Type")}";']
            if asset.encodings:
                lines += ["    gzip_static on;", "    gzip_vary on;", "    # brotli_static on;"]
            lines += [f'    add_header {header} "{value}" always;' for header, value in headers.items()]
            lines.append("}")
    if api:
        lines += ["", "# The page says the JSON API answers beside it (--with-api): send it to `cookiebridge serve`.",
                  f"location {path}api/ {{", "    proxy_pass http://127.0.0.1:8000;  # where serve listens",
                  "    proxy_set_header Host $host;", "    proxy_set_header X-Forwarded-Proto $scheme;",
                  "    proxy_set_header X-Forwarded-For $remote_addr;", "}"]
    if api and resume:
        lines += ["", "# resume is on: the bridge's resume page is `cookiebridge serve`'s too.",
                  f"location = {path}resume {{", "    proxy_pass http://127.0.0.1:8000;  # where serve listens",
                  "    proxy_set_header Host $host;", "    proxy_set_header X-Forwarded-Proto $scheme;",
                  "    proxy_set_header X-Forwarded-For $remote_addr;", "}"]
    return "\n".join(lines) + "\n"


def headers_file(assets: list[Asset], public_url: str) -> str:
    """The same headers in the `_headers` format that Netlify and Cloudflare Pages read from the site's root."""
    path = urlsplit(public_url).path
    lines = ["# cookiebridge: generated by `cookiebridge build`; do not edit, build again.",
             "# Netlify / Cloudflare Pages: this file must sit at the root of the published folder.",
             *_NO_STORAGE_ACCESS_HEADERS]
    for asset in assets:
        for name, immutable in asset.urls.items():
            lines.append(path + name)
            lines += [f"  {header}: {value}" for header, value in asset.response_headers(immutable=immutable).items()]
    return "\n".join(lines) + "\n"


def script_tag(asset: Asset, public_url: str) -> str:
    # The hashed URL: its content never changes, so the integrity value stays right for as long as it is used.
    return (f'<script src="{public_url}{asset.hashed_name}" integrity="{asset.integrity}" '
            'crossorigin="anonymous"></script>')


def _write(path: Path, data: bytes) -> bool:
    """Write `data` unless the file already holds exactly that; True when it wrote."""
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    temporary = path.with_name(path.name + ".cookiebridge-tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)  # a server reading the file sees the old or the new bytes, never half
    return True


def build(settings: Settings, out_dir: str | os.PathLike[str], public_url: str, *, api: bool = False,
          web_root: str | None = None) -> BuildResult:
    """Write the static bridge into `out_dir` for serving at `public_url`.

    `api`: whether `cookiebridge serve` answers the JSON API at public_url + "api/v1/" (link handoff, identity);
    the iframe page tells the provider so. `web_root`: where the files sit on the nginx host [out_dir, absolute].
    Files of earlier builds (older hashed names) are left in place: pages cached before still reference them.
    """
    public_url = check_public_url(public_url)
    check_trusted_origins(settings, public_url)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BuildError(f"--out {str(out)!r} is a file, not a directory")
    assets = build_assets(settings.trusted_origins, settings.cookie_names, settings.cookie_max_age, api=api,
                          resume=settings.resume)
    _check_header_values(assets)
    root = web_root if web_root is not None else str(out.resolve())
    if not root.startswith("/") or _UNSAFE_HEADER_VALUE.search(root) or re.search(r"[\s{};#]", root):
        raise BuildError(f"nginx root {root!r} must be an absolute path without spaces, quotes, $, {{, }}, ; or #")
    provider = next(asset for asset in assets if asset.name == PROVIDER)
    manifest = _manifest(assets, public_url, api)
    files = _files(assets)
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
    files[NGINX] = nginx_snippet(assets, public_url, root, api, settings.resume).encode("utf-8")
    files[HEADERS_FILE] = headers_file(assets, public_url).encode("utf-8")
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = [name for name in sorted(files) if _write(out / name, files[name])]
    except OSError as error:
        raise BuildError(f"cannot write to {str(out)!r}: {error.strerror or error}") from None
    return BuildResult(
        out_dir=out, public_url=public_url, files=sorted(files), written=written,
        brotli=any("br" in asset.encodings for asset in assets),
        script_tag=script_tag(provider, public_url), iframe_url=public_url + IFRAME_PAGE,
    )
