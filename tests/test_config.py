from pathlib import Path

import pytest

from cookiebridge.config import DEMO_ORIGINS, ConfigError, Settings, load_settings

SECRET = "s3cret-s3cret-s3cret-s3cret"


def test_no_configuration_gives_the_embedded_local_default() -> None:
    settings = load_settings(environ={})
    assert settings.embedded_default
    assert settings.trusted_origins == DEMO_ORIGINS
    assert settings.host == "127.0.0.1"
    assert settings.generated_secret and len(settings.secret_key) >= 32


def test_flags_win_over_environment_over_file(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('trusted_origins = ["https://a.example"]\nport = 9000\nhost = "0.0.0.0"\nworkers = 2\n')
    environ = {"COOKIEBRIDGE_PORT": "9100", "COOKIEBRIDGE_TRUSTED_ORIGINS": "https://b.example, https://c.example"}
    settings = load_settings(config_file=config, environ=environ, flags={"port": "9200"})
    assert settings.port == 9200
    assert settings.trusted_origins == ("https://b.example", "https://c.example")
    assert settings.host == "0.0.0.0" and settings.workers == 2
    assert not settings.embedded_default


def test_config_file_may_use_a_cookiebridge_table_and_comes_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('[cookiebridge]\ntrusted_origins = ["https://A.example:443"]\ncookie_names = ["chat"]\n')
    settings = load_settings(environ={"COOKIEBRIDGE_CONFIG": str(config), "COOKIEBRIDGE_SECRET_KEY": SECRET})
    assert settings.trusted_origins == ("https://a.example",)
    assert settings.cookie_names == ("chat",)
    assert settings.secret_key == SECRET and not settings.generated_secret


def test_duplicate_origins_collapse_after_normalisation() -> None:
    settings = load_settings(environ={}, flags={"trusted_origins": ["https://a.example", "HTTPS://A.example:443/"]})
    assert settings.trusted_origins == ("https://a.example",)


def test_secret_never_appears_in_repr_or_effective_settings() -> None:
    settings = load_settings(environ={"COOKIEBRIDGE_SECRET_KEY": SECRET})
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.effective())
    assert settings.effective()["secret_key"] == "********"


def test_settings_survive_the_trip_to_worker_processes() -> None:
    settings = load_settings(environ={"COOKIEBRIDGE_SECRET_KEY": SECRET}, flags={"workers": "3"})
    assert Settings.from_json(settings.to_json()) == settings


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"flags": {"trusted_origins": ["domain-a.com"]}}, "trusted_origins: origin 'domain-a.com' has no scheme: write 'https://domain-a.com'"),
        ({"flags": {"trusted_origins": ["*"]}}, "trusted_origins: origin '*' is not allowed"),
        ({"flags": {"port": "http"}}, "port = 'http' must be a whole number from 1 to 65535"),
        ({"flags": {"port": "0"}}, "port = '0' must be a whole number from 1 to 65535"),
        ({"flags": {"workers": "0"}}, "workers = '0' must be a whole number from 1 to 64"),
        ({"flags": {"secret_key": "short"}}, "secret_key is too short (5 characters): use at least 16"),
        ({"flags": {"cookie_names": ["bad name"]}}, "cookie_names: 'bad name' is not a usable cookie name"),
        ({"flags": {"cookie_names": ["__cookiebridge_test"]}}, "names starting with __cookiebridge are reserved"),
        ({"flags": {"log_level": "loud"}}, "log_level = 'loud' must be one of critical, error"),
        ({"flags": {"ssl_certfile": "/nonexistent.pem"}}, "ssl_certfile and ssl_keyfile go together"),
        ({"flags": {"ssl_certfile": "/nonexistent.pem", "ssl_keyfile": "/nonexistent.key"}}, "ssl_certfile = '/nonexistent.pem' is not a readable file"),
        ({"flags": {"proxy_headers": "maybe"}}, "proxy_headers = 'maybe' must be true or false"),
        ({"flags": {"store": "mysql://db/chat"}}, "store: unsupported store URL 'mysql://db/chat': use sqlite:///"),
        ({"flags": {"identity_secret": "tiny"}}, "identity_secret is too short (4 characters)"),
        ({"flags": {"handoff_ttl": "3600"}}, "handoff_ttl = '3600' must be a whole number from 5 to 600"),
        ({"environ": {"COOKIEBRIDGE_PORTS": "1"}}, "unknown environment variable COOKIEBRIDGE_PORTS"),
        ({"environ": {"COOKIEBRIDGE_TRUSTED_ORIGINS": ""}}, "trusted_origins is empty: add each site"),
    ],
)
def test_bad_values_are_one_line_naming_value_and_fix(kwargs: dict, message: str) -> None:
    kwargs.setdefault("environ", {})
    with pytest.raises(ConfigError) as caught:
        load_settings(**kwargs)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trusted_origins = [", "is not valid TOML"),
        ('trusted_origin = ["https://a.example"]', "unknown key 'trusted_origin'"),
        ("trusted_origins = [1, 2]", "trusted_origins = [1, 2] must be a list of strings"),
        ('trusted_origins = ["https://a.example"]\nport = 8.5', "port = 8.5 must be a whole number"),
        ("trusted_origins = []", "trusted_origins is empty"),
    ],
)
def test_bad_config_files_are_named(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=config, environ={})
    assert message in str(caught.value)


def test_missing_config_file_is_named() -> None:
    with pytest.raises(ConfigError, match="config file '/no/such.toml' does not exist"):
        load_settings(config_file="/no/such.toml", environ={})


def test_every_field_but_the_bookkeeping_is_a_declared_setting_with_what_its_type_needs() -> None:
    import dataclasses

    from cookiebridge.config import SETTINGS

    names = [declared.name for declared in SETTINGS]
    assert set(names) == {f.name for f in dataclasses.fields(Settings)} - {"embedded_default", "generated_secret"}
    assert len({declared.flag for declared in SETTINGS}) == len(names)
    for declared in SETTINGS:
        assert declared.spec.help.endswith(".") and "\n" not in declared.spec.help, declared.name
        assert (declared.spec.range is not None) == (declared.kind == "int"), declared.name
        assert not declared.spec.choices or declared.kind == "str", declared.name
        if declared.kind == "list":
            assert declared.spec.flag and declared.spec.item != "value", declared.name
        if declared.default is not dataclasses.MISSING and declared.default is not None and declared.default != ():
            given = load_settings(environ={}, flags={declared.name: declared.default})
            assert given.effective() == load_settings(environ={}).effective(), declared.name  # defaults pass checks


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"COOKIEBRIDGE_HANDOFF_TTL": "ten"}, "handoff_ttl = 'ten' must be a whole number from 5 to 600"),
        ({"COOKIEBRIDGE_METRICS": "maybe"}, "metrics = 'maybe' must be true or false"),
        ({"COOKIEBRIDGE_LOG_LEVEL": "LOUD"}, "log_level = 'LOUD' must be one of critical, error, warning"),
        ({"COOKIEBRIDGE_COOKIE_NAMES": ","}, "cookie_names is empty: list the session cookie names"),
        ({"COOKIEBRIDGE_PREVIOUS_SECRET_KEYS": "old-key-0123456789abcdef"},
         "previous_secret_keys is set but secret_key is not: set the new key there"),
    ],
)
def test_environment_values_are_parsed_as_declared(environ: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=environ)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_keys_suggest_the_closest_one(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('trusted_origin = ["https://a.example"]\n')
    with pytest.raises(ConfigError, match="unknown key 'trusted_origin' in .*: did you mean 'trusted_origins'\\?"):
        load_settings(config_file=config, environ={})


def test_a_key_is_never_shown_in_a_type_error(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('trusted_origins = ["https://a.example"]\nprevious_secret_keys = ["kept-secret-0123456789", 1]\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=config, environ={})
    assert str(caught.value).startswith("previous_secret_keys = <hidden> must be a list of strings")
    assert "kept-secret" not in str(caught.value)


def test_effective_toml_is_toml_that_loads_back_to_the_same_settings(tmp_path: Path) -> None:
    import tomllib

    settings = load_settings(environ={"COOKIEBRIDGE_HOST": 'odd"host\\name\x7f', "COOKIEBRIDGE_WORKERS": "3"},
                             flags={"trusted_origins": ["https://a.example"], "metrics": True})
    text = "\n".join(settings.effective_toml())
    assert tomllib.loads(text)["host"] == 'odd"host\\name\x7f'
    config = tmp_path / "effective.toml"
    config.write_text(text)
    assert load_settings(config_file=config, environ={}).effective() == settings.effective()
