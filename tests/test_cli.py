import json
import socket
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from testsupport import BridgeProcess, free_port
from testsupport.api import cookiebridge

SECRET = "cli-test-secret-0123456789"


def test_check_prints_effective_settings_with_the_secret_masked() -> None:
    result = cookiebridge("check", "--trusted-origin", "https://Shop.example", "--trusted-origin", "https://blog.example:8443",
                          env={"COOKIEBRIDGE_SECRET_KEY": SECRET})
    assert result.returncode == 0, result.stderr
    assert 'trusted_origins = ["https://shop.example", "https://blog.example:8443"]' in result.stdout
    assert 'secret_key = "********"' in result.stdout
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["check", "--trusted-origin", "domain-a.com"],
         "cookiebridge: error: trusted_origins: origin 'domain-a.com' has no scheme: write 'https://domain-a.com'"),
        (["check", "--trusted-origin", "http://domain-a.com"],
         "cookiebridge: error: trusted_origins: origin 'http://domain-a.com' uses plain http: cookies marked Secure need https, write 'https://domain-a.com'"),
        (["check", "--trusted-origin", "https://a.com/path"],
         "cookiebridge: error: trusted_origins: origin 'https://a.com/path' has a path, query or fragment: an origin is scheme://host[:port], write 'https://a.com'"),
        (["serve", "--port", "eighty"], "cookiebridge: error: port = 'eighty' must be a whole number from 1 to 65535"),
        (["serve", "--config", "/no/such.toml"], "cookiebridge: error: config file '/no/such.toml' does not exist: check the --config path"),
        (["check", "--trusted-origin", "https://a.com,https://b.com"],
         ("cookiebridge: error: --trusted-origin 'https://a.com,https://b.com': one origin per --trusted-origin; repeat "
          "the flag, or COOKIEBRIDGE_TRUSTED_ORIGINS=a,b")),
        (["check", "--trusted-origin", "https://a.com https://b.com"],
         ("cookiebridge: error: --trusted-origin 'https://a.com https://b.com': one origin per --trusted-origin; repeat "
          "the flag, or COOKIEBRIDGE_TRUSTED_ORIGINS=a,b")),
        (["check", "--previous-secret-key", "old-key-0123456789abcdef,other-key-0123456789abcdef"],
         ("cookiebridge: error: --previous-secret-key <hidden>: one key per --previous-secret-key; repeat the flag, or "
          "COOKIEBRIDGE_PREVIOUS_SECRET_KEYS=a,b")),
        (["check", "--log-format", "xml"],
         "cookiebridge: error: log_format = 'xml' must be text (uvicorn's lines) or json (one object per line)"),
        (["check", "--workers", "2.5"], "cookiebridge: error: workers = '2.5' must be a whole number from 1 to 64"),
        (["build", "--public-url", "https://bridge.example/"],
         ("cookiebridge: error: --out is required, e.g. cookiebridge build --out dist --public-url "
          "https://bridge.example.com/")),
    ],
)
def test_bad_configuration_is_one_line_and_status_2(args: list[str], line: str) -> None:
    result = cookiebridge(*args)
    assert result.returncode == 2
    assert result.stderr.strip() == line
    assert "Traceback" not in result.stderr


def test_check_prints_valid_toml_and_ends_with_ok_or_a_count_of_warnings(tmp_path: Path) -> None:
    """`check`'s stdout is a config file: unset settings are comments, and it loads back to the same settings."""
    args = ["check", "--trusted-origin", "https://shop.example", "--store", "memory:", "--port", "9000"]
    clean = cookiebridge(*args, env={"COOKIEBRIDGE_SECRET_KEY": "Qm4vT9xK2pL7wZ3nR8bY6cH1dF5gJ0sA"})
    assert clean.returncode == 0, clean.stderr
    parsed = tomllib.loads(clean.stdout)
    assert parsed["trusted_origins"] == ["https://shop.example"] and parsed["port"] == 9000
    assert parsed["metrics"] is False and "ssl_certfile" not in parsed and "# ssl_certfile: not set" in clean.stdout
    assert clean.stdout.splitlines()[-1] == "# OK"
    warned = cookiebridge(*args)  # no secret_key: generated, with a warning
    assert warned.returncode == 0 and "secret_key" not in tomllib.loads(warned.stdout)
    assert warned.stdout.splitlines()[-1] == "# 1 warning: see above"
    config = tmp_path / "effective.toml"
    config.write_text(warned.stdout)
    assert cookiebridge("check", "--config", str(config)).stdout == warned.stdout


def test_help_shows_typed_options_with_their_defaults() -> None:
    text = " ".join(cookiebridge("serve", "--help").stdout.split())
    assert "--port INTEGER Port to listen on. [default: 8000; 1-65535]" in text
    assert "--trusted-origin ORIGIN" in text and "--log-format [text|json]" in text
    assert "--metrics / --no-metrics" in text


def test_module_and_console_script_agree() -> None:
    assert "cookiebridge, version" in cookiebridge("--version").stdout


def test_serve_with_no_configuration_runs_the_embedded_default_and_says_so(tmp_path: Path) -> None:
    with BridgeProcess([], tmp_path / "serve.log", env={"PATH": "/usr/bin:/bin"}) as bridge:
        with urllib.request.urlopen(bridge.url + "/iframe.html") as response:
            page = response.read().decode()
    assert "https://127.0.0.2:8443" in page
    notices = [line for line in bridge.log().splitlines() if "embedded local-trial default" in line]
    assert len(notices) == 1


def test_serve_runs_several_workers_from_one_validated_configuration(tmp_path: Path) -> None:
    args = ["--workers", "2", "--trusted-origin", "https://shop.example"]
    with BridgeProcess(args, tmp_path / "serve.log", env={"COOKIEBRIDGE_SECRET_KEY": SECRET}) as bridge:
        bodies = {urllib.request.urlopen(bridge.url + "/iframe.html").read() for _ in range(6)}
        deadline = time.monotonic() + 30  # the second worker may still be starting on a busy machine
        while bridge.log().count("Started server process") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert len(bodies) == 1 and b"https://shop.example" in bodies.pop()
    assert bridge.log().count("Started server process") == 2


@pytest.mark.parametrize("trusted", [True, False])
def test_forwarded_client_address_is_used_only_from_a_trusted_proxy(tmp_path: Path, trusted: bool) -> None:
    args = ["--trusted-origin", "https://shop.example", "--proxy-headers",
            "--forwarded-allow-ips", "127.0.0.1" if trusted else "192.0.2.1"]
    with BridgeProcess(args, tmp_path / "serve.log", env={"COOKIEBRIDGE_SECRET_KEY": SECRET}) as bridge:
        request = urllib.request.Request(bridge.url + "/healthz",
                                         headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
        urllib.request.urlopen(request).read()
    assert ("203.0.113.9" in bridge.log()) is trusted


def test_serve_says_what_to_paste_once_bound_in_its_log_format(tmp_path: Path) -> None:
    """After the bind: the IFRAME_URL, the script tag, the trusted origins and the store, as JSON lines with
    --log-format json; GET / is the page that names the files."""
    args = ["--trusted-origin", "https://shop.example", "--store", "memory:", "--log-format", "json"]
    with BridgeProcess(args, tmp_path / "serve.log", env={"COOKIEBRIDGE_SECRET_KEY": SECRET}) as bridge:
        with urllib.request.urlopen(bridge.url + "/") as response:
            index = response.read().decode()
    assert 'href="/iframe.html"' in index and 'href="/healthz"' in index
    messages = [json.loads(line)["message"] for line in bridge.log().splitlines() if line.strip()]
    base = bridge.url + "/"
    assert f"IFRAME_URL: {base}iframe.html" in messages
    assert (f'script tag for every page of every trusted site: <script src="{base}cookie-provider.min.js" '
            'crossorigin="anonymous"></script>') in messages
    assert "trusted origins: https://shop.example" in messages and "store: memory:" in messages
    assert SECRET not in bridge.log()


def test_a_busy_port_is_one_line_naming_the_flag_before_any_start_up(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = cookiebridge("serve", "--port", str(port), "--store", "memory:")
    assert result.returncode == 2
    assert result.stderr.strip() == (f"cookiebridge: error: port {port} on 127.0.0.1 is in use (another `cookiebridge "
                                     "serve`?): stop it, or pick another port with --port N")
    assert result.stdout == ""


def test_build_help_shows_only_the_options_a_build_reads() -> None:
    text = cookiebridge("build", "--help").stdout
    options = {word for word in text.split() if word.startswith("--")}
    assert options == {"--out", "--public-url", "--with-api", "--nginx-root", "--config", "--trusted-origin",
                       "--cookie-name", "--cookie-max-age", "--help"}
    serve = cookiebridge("serve", "--help").stdout
    assert "--port" in serve and "--workers" in serve and "--cookie-max-age" in serve
