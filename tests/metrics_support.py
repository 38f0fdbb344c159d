"""Helpers of tests/test_metrics.py and tests/test_health.py: scraping the metrics
address with a real HTTP client and reading it with prometheus_client's parser."""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

APP = "metrics_apps:app"

#: (sample name, sorted label pairs) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str, dict[str, str]]:
    """GET ``path`` on 127.0.0.1:``port``: status, body, headers (lower-case names)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode(), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), {k.lower(): v for k, v in e.headers.items()}


def scrape(port: int) -> Samples:
    """``/metrics``, parsed: every sample by name and labels."""
    status, text, headers = get(port, "/metrics")
    assert status == 200, text
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def per_worker(samples: Samples, name: str) -> dict[str, float]:
    """A per-worker sample by worker pid."""
    return {dict(labels)["pid"]: v for (n, labels), v in samples.items() if n == name}


def wait_scrape(port: int, predicate: Callable[[Samples], object], what: str,
                timeout: float = 15.0) -> Samples:
    """Scrape until ``predicate`` holds (gauges and the accepted count are sampled by
    the workers every half second); the last scrape is in the error otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(port)
        if predicate(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last scrape: {samples}")
        time.sleep(0.05)


def request(host: str, port: int, method: str, path: str, body: bytes | None = None,
            conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    """One request, on ``conn`` (kept open) or on a new connection (closed after)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection(host, port, timeout=15)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if own:
            conn.close()
