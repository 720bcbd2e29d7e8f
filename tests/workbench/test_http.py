"""The client's address behind trusted proxies, and who uses it."""

import pytest
from django.test import Client, RequestFactory

from workbench.http import client_ip


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "198.51.100.7", "10.0.0.2"),  # no proxy trusted: the header is ignored
        (1, "198.51.100.7", "198.51.100.7"),
        (1, "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # the client's own entry is not trusted
        (2, "6.6.6.6, 198.51.100.7, 10.0.0.1", "198.51.100.7"),
        (2, "198.51.100.7", "10.0.0.2"),  # fewer entries than proxies: not behind them
        (1, "", "10.0.0.2"),
    ],
)
def test_client_ip_trusts_only_the_proxies_it_is_told_of(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_behind_a_proxy_the_rate_limit_counts_each_client_not_the_proxy(system, settings):
    from reviews.services.notices import notice_token
    from tests.factories import UserFactory, decided_case

    alice = UserFactory(role="reviewer")
    settings.TRUSTED_PROXY_COUNT = 1
    settings.NOTICE_RATE_GET = "2/m"
    case = decided_case(system, alice)
    url = f"/notice/{notice_token(case.reference)}/"
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    one = [
        Client(**proxy, HTTP_X_FORWARDED_FOR="198.51.100.11").get(url).status_code for _ in range(3)
    ]
    other = Client(**proxy, HTTP_X_FORWARDED_FOR="198.51.100.12").get(url).status_code
    assert one == [200, 200, 429] and other == 200


def test_behind_a_proxy_the_metrics_allowlist_looks_at_the_client(db, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "127.0.0.1"}  # the proxy runs on this machine
    assert Client(**proxy, HTTP_X_FORWARDED_FOR="203.0.113.5").get("/metrics").status_code == 404
    assert Client(**proxy, HTTP_X_FORWARDED_FOR="127.0.0.1").get("/metrics").status_code == 200
