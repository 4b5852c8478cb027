import pytest

from cookiebridge.origins import OriginError, normalise_origin


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://domain-a.com", "https://domain-a.com"),
        ("https://Domain-A.COM", "https://domain-a.com"),
        ("HTTPS://domain-a.com/", "https://domain-a.com"),
        ("https://domain-a.com:443", "https://domain-a.com"),
        ("https://domain-a.com:8443", "https://domain-a.com:8443"),
        ("  https://domain-a.com  ", "https://domain-a.com"),
        ("http://localhost:8001", "http://localhost:8001"),
        ("http://127.0.0.2:80", "http://127.0.0.2"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("https://[2001:DB8::1]", "https://[2001:db8::1]"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_origins_are_normalised_like_browsers_report_them(value: str, expected: str) -> None:
    assert normalise_origin(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("domain-a.com", "origin 'domain-a.com' has no scheme: write 'https://domain-a.com'"),
        ("domain-a.com:8443", "has no scheme: write 'https://domain-a.com:8443'"),
        ("https://domain-a.com/chat", "has a path, query or fragment: an origin is scheme://host[:port], write 'https://domain-a.com'"),
        ("https://domain-a.com?x=1", "has a path, query or fragment"),
        ("https://domain-a.com#top", "has a path, query or fragment"),
        ("*", "origin '*' is not allowed: list each site exactly"),
        ("", "is not allowed: list each site exactly"),
        ("null", "origin 'null' is not allowed"),
        ("NULL", "origin 'null' is not allowed"),
        ("https://user:pw@domain-a.com", "contains user info: remove everything before '@'"),
        ("ftp://domain-a.com", "has scheme 'ftp': only https"),
        ("javascript:alert(1)", "has scheme 'javascript': only https"),
        ("http://domain-a.com", "uses plain http: cookies marked Secure need https, write 'https://domain-a.com'"),
        ("https://domain-a.com:99999", "has an invalid port"),
        ("https://domain-a.com:0", "has an invalid port"),
        ("https://domain-a.com.", "has a trailing dot"),
        ("https://", "has no host"),
    ],
)
def test_bad_origins_are_refused_with_the_value_and_the_fix(value: str, message: str) -> None:
    with pytest.raises(OriginError) as caught:
        normalise_origin(value)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
