"""``bench.http_servers`` runs each server it names in a process of its own and measures it:
every server answers the benchmark's requests (a request answered other than 200 stops the
run), each gets a row per round and a median, and the server processes are worker-like."""

from __future__ import annotations

import re

import pytest

from bench.http_servers import _available, main
from bench.worker_like import faust_app


def test_every_server_answers_and_gets_its_rows(capsys: pytest.CaptureFixture[str]) -> None:
    # 2,000 requests take well over the 10 ms tick the CPU is counted in
    main(["--requests", "2000", "--concurrency", "8", "--rounds", "1"])
    printed = capsys.readouterr().out
    for name in _available():
        found = re.search(rf"^1: {re.escape(name)}\s+([0-9.]+)\s", printed, re.M)
        assert found is not None, printed
        assert float(found.group(1)) > 0  # the CPU of the server's own process
        assert re.search(rf"^median: {re.escape(name)}\s+[0-9.]+\s+[0-9.]+$", printed, re.M)


def test_the_servers_faust_app_reports_requests_as_a_started_worker_does() -> None:
    app = faust_app()
    assert app.monitor in app.sensors  # a view's requests reach Faust's Prometheus monitor
    assert len(app.web.web_app.on_response_prepare) == 1  # CORS's hook, as at a start
