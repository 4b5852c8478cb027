"""Command line: a thin Click layer over `load_settings` and `run`."""

from __future__ import annotations

import atexit
import errno
import os
import resource
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import click
import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from . import __version__
from .config import (
    ENV_PREFIX,
    SETTINGS,
    ConfigError,
    Setting,
    Settings,
    load_settings,
    parse,
)
from .demo import topology as demo_topology
from .limits import Limits
from .logs import uvicorn_log_config
from .stores import describe_store_url, open_store


class ConfigurationError(click.ClickException):
    """A configuration or command-line error: one line on stderr naming the bad value and the fix, exit status 2
    (docs/configuration.md lists the exit statuses)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"cookiebridge: error: {self.message}", err=True)


class SettingValue(click.ParamType):
    """A flag's value, parsed as its setting declares (config.parse), so that a bad one gets the same one-line
    message as in a file or the environment. A repeatable flag takes one item: several in one value are refused."""

    def __init__(self, declared: Setting) -> None:
        self.declared = declared
        self.name = "integer" if declared.kind == "int" else "text"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        if self.declared.spec.choices:
            return "[" + "|".join(self.declared.spec.choices) + "]"
        if self.declared.kind == "list":
            return self.declared.spec.item.split()[-1].upper()
        return None

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        declared = self.declared
        if declared.kind == "list":
            if "," in value or len(value.split()) > 1:
                shown = "<hidden>" if declared.secret else repr(value)
                raise ConfigurationError(f"{declared.flag} {shown}: one {declared.spec.item} per {declared.flag}; "
                                         f"repeat the flag, or {declared.variable}=a,b")
            return value
        try:
            return parse(declared, value)
        except ConfigError as exc:
            raise ConfigurationError(str(exc)) from None


def _setting_option(declared: Setting) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The Click option of a setting. No Click default: a flag not given leaves the file and environment in
    charge, so the declared default is shown in the help text instead."""
    low_high = f"; {declared.spec.range[0]}-{declared.spec.range[1]}" if declared.spec.range else ""
    repeat = " Repeat the flag for each." if declared.kind == "list" else ""
    text = f"{declared.spec.help}{repeat}  [default: {declared.describe_default()}{low_high}]"
    if declared.kind == "bool":
        return click.option(f"{declared.flag}/--no-{declared.flag[2:]}", declared.name, default=None, help=text)
    return click.option(declared.flag, declared.name, type=SettingValue(declared), multiple=declared.kind == "list",
                        help=text)


def setting_options(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of the settings declared for command `name` (Spec.commands), and --config. `serve` and `check`
    share all of them, so `check` validates what `serve` runs; `build` takes only those the static files hold."""
    options: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False),
                     help=f"TOML configuration file (or {ENV_PREFIX}CONFIG)."),
        *(_setting_option(declared) for declared in SETTINGS if name in declared.spec.commands),
    ]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def settings_from_flags(config_file: str | None, **flags: Any) -> Settings:
    """Load settings, or stop with ConfigurationError: one line naming the bad value, exit status 2."""
    try:
        return load_settings(config_file=config_file, flags=flags)
    except ConfigError as exc:
        raise ConfigurationError(str(exc)) from None


def describe_start(settings: Settings) -> list[str]:
    if settings.embedded_default:
        return [
            "cookiebridge: no configuration given: running the embedded local-trial default (trusted origins "
            f"{', '.join(settings.trusted_origins)}, a generated development secret); not for production"
        ]
    return [f"cookiebridge: warning: {note}" for note in settings.warnings()]


# Environment variables that may hold keys: removed once read, so worker processes do not inherit them.
_SECRET_VARIABLES = ("SECRET_KEY", "IDENTITY_SECRET", "PREVIOUS_SECRET_KEYS", "PREVIOUS_IDENTITY_SECRETS")
# prometheus-client's multiprocess directory (metrics.MULTIPROC_VARIABLE; that module is not imported here, see there).
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# File descriptors a worker needs besides its client connections (listening socket, store, logs, imports).
SPARE_FDS = 64


class BridgeConfig(uvicorn.Config):
    """uvicorn's configuration plus the bridge's settings and limits. uvicorn hands its configuration to each worker
    process by pickling it through a pipe, so the settings, keys included, travel that way: never through the
    workers' environment (readable in /proc/<pid>/environ), never through a file."""

    def __init__(self, settings: Settings, limits: Limits, **kwargs: Any) -> None:
        super().__init__("cookiebridge.app:app_from_environment", factory=True, **kwargs)
        self.cookiebridge_settings = settings.to_json()
        self.cookiebridge_limits = limits

    def load(self) -> None:
        from .app import hand_over_settings

        hand_over_settings(self.cookiebridge_settings)  # before uvicorn calls the app factory
        super().load()


def connection_limit(wanted: int) -> int:
    """Raise the soft file-descriptor limit so `wanted` connections fit (systemd's default soft limit is 1,024);
    return how many connections really fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + SPARE_FDS
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted
    return max(1, soft - SPARE_FDS)


def check_store(settings: Settings, *, create: bool) -> tuple[bool, str]:
    """Write and read the store once: (True, the line to print) when it works, else (False, one line naming the
    store and the fix). With `create` false (check), a SQLite file that does not exist yet is not created: its
    directory must be writable."""
    from .health import probe_at_start, sqlite_would_be_created

    store = open_store(settings.store)
    shown = describe_store_url(settings.store)
    directory = None if create else sqlite_would_be_created(store)
    if directory is not None:
        if os.path.isdir(directory) and os.access(directory, os.W_OK | os.X_OK):
            return True, f"cookiebridge: store {shown}: does not exist yet; serve will create it in {directory}"
        return False, (f"cookiebridge: error: store {shown} cannot be created: directory {directory} does not exist "
                       "or is not writable; fix the path in store or create the directory")
    failure = probe_at_start(store)
    if failure is not None:
        fix = ("check that the server is up and reachable from here" if "://" in shown and not
               shown.startswith("sqlite") else "check the path and its permissions")
        return False, f"cookiebridge: error: store {shown} cannot be opened: {failure.rstrip('.')}; {fix}"
    return True, f"cookiebridge: store {shown}: written and read back"


def say(settings: Settings, line: str) -> None:
    """A start-up line of `serve` on stderr: as it is, or as one JSON object with log_format = "json" (a level
    from its "cookiebridge: warning:"/"error:" prefix), like every later line."""
    if settings.log_format != "json":
        click.echo(line, err=True)
        return
    import logging

    from .logs import JsonFormatter

    text = line.removeprefix("cookiebridge: ")
    level = next((name for name in ("warning", "error") if text.startswith(name + ": ")), "info")
    record = logging.LogRecord("cookiebridge", logging.getLevelName(level.upper()), "", 0,
                               text.removeprefix(level + ": "), None, None)
    record.event = "start"
    click.echo(JsonFormatter().format(record), err=True)


def prepare_metrics_dir(settings: Settings) -> None:
    """prometheus-client's multiprocess mode for `--workers N` with metrics on: every worker writes its values to
    files in PROMETHEUS_MULTIPROC_DIR and /metrics sums them. The directory is the operator's, if set (emptied of
    the last run's files here, as the library requires), else a private one removed at exit. One worker, or
    metrics off: no directory, values kept in memory."""
    if settings.workers == 1 or not settings.metrics:
        os.environ.pop(MULTIPROC_VARIABLE, None)
        return
    given = os.environ.get(MULTIPROC_VARIABLE)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        return
    directory = tempfile.mkdtemp(prefix="cookiebridge-metrics-")
    os.environ[MULTIPROC_VARIABLE] = directory
    atexit.register(shutil.rmtree, directory, ignore_errors=True)


# uvicorn's default listen backlog.
BACKLOG = 2048


def listen(host: str, port: int) -> socket.socket:
    """The listening socket of `serve`, bound before anything is printed (as uvicorn's Config.bind_socket makes it,
    inheritable for the worker processes), or ConfigurationError: one line naming the address and the fix."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT does not block
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(f"port {port} on {host} is in use (another `cookiebridge serve`?): stop it, or "
                                     "pick another port with --port N") from None
        if exc.errno == errno.EACCES:
            raise ConfigurationError(f"port {port} on {host} needs privileges: pick a port above 1023 with --port N"
                                     ) from None
        if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
            raise ConfigurationError(f"host {host!r} is not an address of this machine: pick another with --host, "
                                     "e.g. --host 127.0.0.1") from None
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another port with "
                                 "--port N") from None
    sock.set_inheritable(True)
    return sock


def describe_listener(settings: Settings, port: int) -> list[str]:
    """The start-up block of `serve`, once its socket is bound: what a site owner pastes, and what is in force."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    base = f"{'https' if settings.ssl_certfile else 'http'}://{host}:{port}/"
    where = (" (as reached here; use the public URL your proxy or DNS gives it)"
             if settings.proxy_headers or settings.host in ("0.0.0.0", "::") else "")
    return [
        f"cookiebridge: listening on {base} (Ctrl+C to stop); that page lists what the bridge serves",
        f"cookiebridge: IFRAME_URL: {base}iframe.html{where}",
        f'cookiebridge: script tag for every page of every trusted site: <script src="{base}cookie-provider.min.js" '
        'crossorigin="anonymous"></script>',
        f"cookiebridge: trusted origins: {', '.join(settings.trusted_origins)}",
        f"cookiebridge: store: {describe_store_url(settings.store)}",
    ]


def run(settings: Settings) -> None:
    """Serve the bridge with uvicorn; every worker builds its app from the same validated settings."""
    try:
        sock = listen(settings.host, settings.port)  # first: a busy port is one line, before anything else
    except ConfigurationError as exc:
        say(settings, f"cookiebridge: error: {exc.message}")
        raise click.exceptions.Exit(2) from None
    for line in describe_start(settings):
        say(settings, line)
    prepare_metrics_dir(settings)
    works, line = check_store(settings, create=True)
    say(settings, line)
    if not works:
        raise click.exceptions.Exit(2)  # the line above said why, in the log format (JSON lines or text)
    for name in _SECRET_VARIABLES:
        os.environ.pop(ENV_PREFIX + name, None)
    connections = connection_limit(settings.max_connections)
    if connections < settings.max_connections:
        say(settings, f"cookiebridge: warning: max_connections {settings.max_connections} does not fit the file "
            f"descriptor limit ({resource.getrlimit(resource.RLIMIT_NOFILE)[0]}): using {connections}; raise it "
            "(systemd: LimitNOFILE=) or lower max_connections")
    limits = Limits(max_header_bytes=settings.max_header_bytes, header_timeout=settings.header_timeout,
                    body_timeout=settings.body_timeout, max_connections=connections,
                    max_concurrent_requests=settings.max_concurrent_requests)
    config = BridgeConfig(
        settings,
        limits,
        http="cookiebridge.limits:LimitedHttpToolsProtocol",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        ssl_certfile=settings.ssl_certfile,
        ssl_keyfile=settings.ssl_keyfile,
        proxy_headers=settings.proxy_headers,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level=settings.log_level,
        log_config=uvicorn_log_config(settings.log_format),
        access_log=settings.log_format == "text",  # json: the app logs each request itself (logs.AccessLog)
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    for line in describe_listener(settings, sock.getsockname()[1]):
        say(settings, line)
    # What uvicorn.run does with a Config, which it cannot be given.
    server = uvicorn.Server(config)
    try:
        if config.workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    if config.workers == 1 and not server.started:
        sys.exit(STARTUP_FAILURE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cookiebridge")
def main() -> None:
    """cookiebridge: keep a chat session when customers move between your domains."""


@main.command()
@setting_options("serve")
def serve(config_file: str | None, **flags: Any) -> None:
    """Run the bridge origin: iframe.html, the scripts and the API."""
    run(settings_from_flags(config_file, **flags))


@main.command()
@setting_options("check")
def check(config_file: str | None, **flags: Any) -> None:
    """Validate the configuration, print the effective settings (secrets masked) and try the store."""
    settings = settings_from_flags(config_file, **flags)
    click.echo("# cookiebridge check: the effective settings (defaults < file < environment < flags), keys masked")
    for line in settings.effective_toml():
        click.echo(line)
    notes = describe_start(settings)
    for line in notes:
        click.echo(line, err=True)
    works, line = check_store(settings, create=False)
    if not works:
        raise ConfigurationError(line.removeprefix("cookiebridge: error: "))
    click.echo(line, err=True)
    click.echo(f"# {len(notes)} warning{'s' if len(notes) != 1 else ''}: see above" if notes else "# OK")


@main.command(name="build")
@click.option("--out", "out_dir", metavar="DIR", help="Directory to write the files into (created if missing).")
@click.option("--public-url", metavar="URL", help="Where the files will be served, e.g. https://bridge.example.com/.")
@click.option("--with-api", is_flag=True, help="`cookiebridge serve` also answers the JSON API at PUBLIC_URL/api/v1/ "
              "(link handoff, identity); without it the iframe page tells the provider there is none.")
@click.option("--nginx-root", metavar="PATH", help="Where the files will sit on the nginx host [the --out directory].")
@setting_options("build")
def build_command(config_file: str | None, out_dir: str | None, public_url: str | None, with_api: bool,
                  nginx_root: str | None, **flags: Any) -> None:
    """Write the bridge as static files for a CDN or web server, with their headers and the script tag."""
    from .build import BuildError, build

    if not out_dir or not public_url:
        raise ConfigurationError(f"{'--out' if not out_dir else '--public-url'} is required, e.g. cookiebridge build "
                                 "--out dist --public-url https://bridge.example.com/")
    settings = settings_from_flags(config_file, **flags)
    try:
        result = build(settings, out_dir, public_url, api=with_api, web_root=nginx_root)
    except BuildError as exc:
        raise ConfigurationError(str(exc)) from None
    notes = build_notes(settings)
    if not result.brotli:
        notes.append("cookiebridge: note: brotli is not installed, so there are no .br copies (pip install brotli)")
    for line in notes:
        click.echo(line, err=True)
    out = result.out_dir
    click.echo(f"cookiebridge: {len(result.files)} files in {out} ({len(result.written)} changed) for "
               f"{result.public_url}")
    click.echo(f"Serve them with the headers in {out / 'nginx.conf'} (nginx) or {out / '_headers'} "
               "(Netlify, Cloudflare Pages).")
    if with_api:
        click.echo(f"Link handoff and signed identity: `cookiebridge serve` must answer {result.public_url}api/v1/ "
                   "(nginx.conf sends it there).")
    else:
        click.echo("Link handoff and signed identity are off (no --with-api): only the iframe cookie carries the "
                   "chat; build with --with-api once `cookiebridge serve` answers beside the files.")
    click.echo(f"IFRAME_URL: {result.iframe_url}")
    click.echo("Script tag for every page of every trusted site:")
    click.echo(result.script_tag)


def build_notes(settings: Settings) -> list[str]:
    """What `build` says about the settings it reads. Keys, the store and the listener are serve's: a static build
    uses none of them, so their warnings are left to `serve` and `check`."""
    if settings.embedded_default:
        return [f"cookiebridge: note: no trusted origins configured: the iframe page trusts the local demo sites "
                f"({', '.join(settings.trusted_origins)}) only"]
    return [f"cookiebridge: warning: {note}" for note in settings.warnings() if note.startswith("trusted origin")]


@main.command()
@click.option("--port", default=demo_topology.PORT, show_default=True, type=click.IntRange(1, 65535),
              help="Port of the bridge and of the demo sites.")
@click.option("--bridge-host", default=demo_topology.BRIDGE_HOST, show_default=True,
              help="Loopback address of the bridge.")
@click.option("--site-host", "site_hosts", multiple=True, default=demo_topology.SITE_HOSTS, show_default=True,
              help="Loopback address of a demo site (repeat; each is another site: domain-a, domain-b, ...).")
def demo(port: int, bridge_host: str, site_hosts: tuple[str, ...]) -> None:
    """Start the bridge and two demo sites (domain-a, domain-b) on loopback and print their URLs. Needs the demo
    extra: pip install 'cookiebridge[demo]'."""
    from .demo import (  # the servers' imports only when the demo runs
        DemoError,
        run_demo,
    )

    try:
        run_demo(bridge_host=bridge_host, site_hosts=site_hosts, port=port, echo=click.echo)
    except DemoError as exc:
        raise ConfigurationError(str(exc)) from None
