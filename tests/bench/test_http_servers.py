"""``bench.http_servers`` runs each server it names in a process of its own and measures it:
every server answers the benchmark's requests (a server that failed one would stop the run),
and each gets a row with a positive CPU figure per request."""

from __future__ import annotations

import re

import pytest

from bench.http_servers import _available, main


def test_every_server_answers_and_gets_its_row(capsys: pytest.CaptureFixture[str]) -> None:
    # 2,000 requests take well over the 10 ms tick the CPU is counted in
    main(["--requests", "2000", "--concurrency", "8", "--rounds", "1"])
    printed = capsys.readouterr().out
    names = _available()
    assert len(names) >= 3  # the view, the handler and the low-level server at least
    for name in names:
        found = re.search(rf"^{re.escape(name)}\s+([0-9.]+)\s+([0-9]+)\s", printed, re.M)
        assert found is not None, printed
        assert float(found.group(1)) > 0  # the server's process did the work
        assert int(found.group(2)) > 0
