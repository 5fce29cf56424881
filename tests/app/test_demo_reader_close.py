"""The demo's confluent-kafka reader does not wait for ever on its consumer's close
(``app.demo_consumers._close_within``): librdkafka's close can hang on a group coordinator
that does not answer, and the reader holds no offsets, so the demo goes on without it."""

from __future__ import annotations

import threading

import pytest

from app.demo_consumers import _close_within


class Consumer:
    def __init__(self, hangs: bool) -> None:
        self.hangs = hangs
        self.closed = threading.Event()
        self.release = threading.Event()

    def close(self) -> None:
        if self.hangs:
            self.release.wait()
        self.closed.set()


def test_a_close_that_hangs_is_left_behind_with_a_word(capsys: pytest.CaptureFixture[str]) -> None:
    consumer = Consumer(hangs=True)
    _close_within(consumer, 0.2)
    assert not consumer.closed.is_set()  # returned while close() still waits
    assert "did not close within 0.2 s; carrying on" in capsys.readouterr().out
    consumer.release.set()  # let the thread end


def test_a_close_that_returns_is_waited_for_in_silence(capsys: pytest.CaptureFixture[str]) -> None:
    consumer = Consumer(hangs=False)
    _close_within(consumer, 5)
    assert consumer.closed.is_set()
    assert capsys.readouterr().out == ""
