"""``bench.ingest_pipeline``'s rows reach ``bench.pipeline``'s summary: each paced phase's rows
with a target keep their name within the table's 34 columns, whatever the rate, and the burst's
rows come with the bare acceptor's and the ratio between them."""

from __future__ import annotations

from bench.figures import row
from bench.ingest_pipeline import (
    BurstFigures,
    IngestFigures,
    NormalizeFigures,
    PacedFigures,
    _burst_rows,
    _paced_rows,
)
from bench.pipeline import summary


def _report(paced: PacedFigures) -> list[str]:
    return [row(*line) for line in _paced_rows(paced)]


def test_every_paced_phase_with_a_target_is_in_the_summary() -> None:
    quiet = PacedFigures(499.4, 6.9, 12.3, 1.0, 0.0, 1.2, 0.62, 0.16, broker_cpu=0.3)
    busy = PacedFigures(3087.2, 16.3, 167.2, 0.755, 0.12, 4.5, 0.98, 0.62, broker_cpu=0.41)
    lines = summary({"ingest": _report(quiet) + _report(busy)})
    shown = {line[:34].rstrip(): line[35:45].strip() for line in lines if "[ingest]" in line}
    assert shown == {
        "paced 499/s: ack p99, ms": "12.3",
        "paced 499/s: % acked < 25 ms": "100.0",
        "paced 3087/s: ack p99, ms": "167.2",
        "paced 3087/s: % acked < 25 ms": "75.5",
    }


def test_each_process_has_its_cpu_row_and_brokers_not_started_here_are_not_guessed() -> None:
    local = PacedFigures(3087.2, 16.3, 167.2, 0.755, 0.12, 4.5, 0.98, 0.62, broker_cpu=0.41)
    elsewhere = PacedFigures(3087.2, 16.3, 167.2, 0.755, 0.12, 4.5, 0.98, 0.62)

    def cpu(paced: PacedFigures) -> dict[str, str]:
        return {line[:34].rstrip(): line[35:45].strip() for line in _report(paced) if "CPU" in line}

    assert cpu(local) == {
        "paced 3087/s: worker CPU, %": "98",
        "paced 3087/s: sender CPU, %": "62",
        "paced 3087/s: broker CPU, %": "41",
    }
    assert cpu(elsewhere)["paced 3087/s: broker CPU, %"] == "n/a"


def test_the_burst_and_the_bare_acceptor_reach_the_summary_with_the_ratio_between_them() -> None:
    ingest = IngestFigures(BurstFigures(4200.0, 14.1, 31.7, 240.0), normalized_within=0.2)
    floor = BurstFigures(6100.0, 10.2, 14.9, 100.0)
    normalize = NormalizeFigures(10_000.0, 100.0)
    report = [row(*line) for line in _burst_rows(ingest, floor, normalize)]
    lines = summary({"ingest": report})
    shown = {line[:34].rstrip(): line[35:45].strip() for line in lines if "[ingest]" in line}
    assert shown == {
        "webhook ingest, deliveries/s": "4200",
        "acknowledge latency p99, ms": "31.7",
        "bare acceptor, deliveries/s": "6100",
        "bare acceptor, CPU us/delivery": "100",
        "bare acceptor, ack p99, ms": "14.9",
        # (240 - 0.2 * 100) / 100: the burst less its normalising, over the floor
        "bare acceptor: ingest CPU over it": "2.20",
    }
    figures = {line[:34].rstrip(): line[35:45].strip() for line in report}
    assert figures["ingest CPU less normalising, us"] == "220"
