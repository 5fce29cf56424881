"""The baseline webhook ingest is measured against: the least any acceptor on this stack does.

``bench.bare_kafka`` is normalize's floor; this is the webhook route's. A process of its own
runs aiohttp (the server the worker's route runs on) with one handler that does only what no
acceptor can skip: read the body, check its HMAC-SHA256 signature (the generic connector's
scheme), send the body to Kafka with the worker's producer settings (``acks=all``, its linger,
batch size and partitioner), wait for the acknowledgement, answer 200 with a small JSON. It
keys each record by its signature, which spreads the records over the topic's partitions as
the worker's entity keys spread a burst's (a new key each time: the partitioner hashes every
one, where the worker's burst repeats its entities). Nothing is parsed, modelled, encoded or
counted.

``bench.ingest_pipeline`` sends it the worker's burst: the same signed requests over the same
number of keep-alive connections. The process's CPU per delivery is then what the stack costs
before any of Deskstream's own work. The worker's, less its normalising within the burst (at
normalize's backlog cost per event), is the floor plus everything the worker adds: its route,
reading each delivery back from the raw topic, Faust's hand-over, a batch's tail
(``docs/performance.md``, "Deliveries first", has the layers). Like ``bench.http_servers``'
servers, the process builds and keeps a Faust app (not started) and takes the worker's
collector settings (``bench.worker_like``).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import subprocess
import sys

from aiohttp import web
from aiokafka import AIOKafkaProducer

from app.faust_app import PRODUCER_BATCH_BYTES, PRODUCER_LINGER_S
from app.key_partitioner import KeyPartitioner
from app.worker_process import free_port
from bench.worker_like import faust_app, ready_as_a_worker
from connectors.generic.ingest import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

__all__ = ["BareAcceptor"]

_ANSWER = b'{"status":"accepted"}'


async def _application(bootstrap: str, topic: str, secret: str) -> web.Application:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=int(PRODUCER_LINGER_S * 1000),
        max_batch_size=PRODUCER_BATCH_BYTES,
        partitioner=KeyPartitioner(),  # the worker's (Faust's producer_partitioner)
    )
    await producer.start()
    await producer.partitions_for(topic)  # the topic's metadata, as a running worker has it

    async def accept(request: web.Request) -> web.Response:
        body = await request.read()
        signature = request.headers.get(SIGNATURE_HEADER, "")
        try:
            expected = sign(secret, int(request.headers.get(TIMESTAMP_HEADER, "")), body)
        except ValueError:  # no signing time
            return web.Response(status=401)
        if not hmac.compare_digest(expected, signature):
            return web.Response(status=401)
        await (await producer.send(topic, body, key=signature.encode()))
        return web.Response(body=_ANSWER, content_type="application/json")

    application = web.Application()
    application.router.add_post("/webhooks/{connector_id}", accept)
    return application


def _serve(bootstrap: str, topic: str, secret: str, port: int) -> None:
    # Stopped by SIGKILL (``BareAcceptor``): every delivery it answered is already in Kafka,
    # so there is nothing to flush.
    async def main() -> None:
        _kept = faust_app()  # kept for the whole run, as a worker keeps its own
        application = await _application(bootstrap, topic, secret)
        runner = web.AppRunner(application, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready_as_a_worker()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


class BareAcceptor:
    """The acceptor in a process of its own, for a ``with`` block: its URL and pid."""

    def __init__(self, bootstrap: str, topic: str, secret: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._command = [
            sys.executable,
            "-m",
            "bench.bare_ingest",
            *("--bootstrap", bootstrap, "--topic", topic, "--port", str(self.port)),
        ]
        self._secret = secret
        self._process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None, "use the acceptor in a with block"
        return self._process.pid

    def __enter__(self) -> BareAcceptor:
        # The secret goes through stdin: a command line is visible to every user of the host.
        self._process = process = subprocess.Popen(
            self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert process.stdin is not None
            assert process.stdout is not None
            process.stdin.write(self._secret + "\n")
            process.stdin.close()
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError("the bare acceptor did not start (its error is above)")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    _serve(args.bootstrap, args.topic, sys.stdin.readline().rstrip("\n"), args.port)


if __name__ == "__main__":
    main()
