"""12. Ledger audit: one walk of the queue, as recovery runs it to find a message lost between
kombu's BRPOP and its unacked bookkeeping, with 100,000 page messages queued (each a copy
of a real published message with its own fence) and 1,000 more unacked. The walk looks for
a fence that is nowhere, so it reads everything (the worst case); best of 3. Floor: the
same LRANGE/HSCAN chunks read without parsing. The audit runs at most once per half
MARKETSCAN_LEDGER_AUDIT_SECONDS (default 300 s) in beat's recovery, and only while a
settled page's marker has said `sent` that long.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import redis

from bench.kit.harness import Bench, say
from bench.kit.report import Row
from worker import broker_redis
from worker.chain import broker_ledger
from worker.chain.ledger_audit import LedgerAudit
from worker.domain.page_message import PageMessage
from worker.settings import DEFAULT_SENTINEL_MASTER

NAME = "ledger-audit"
QUEUES = ("marketscan", "marketscan.recovered")
UNACKED = 1000


def _template(client: redis.Redis) -> dict[str, object]:
    from worker.app import publisher

    publisher.publish_page(PageMessage(uuid.uuid4(), uuid.uuid4(), 0, 0))
    raw = client.rpop("marketscan")
    assert isinstance(raw, bytes)
    template: dict[str, object] = json.loads(raw)
    return template


def _copy(template: dict[str, object], message: PageMessage) -> str:
    body = json.dumps([list(message.as_args()), {}, {"callbacks": None, "errbacks": None}])
    payload = {**template, "body": base64.b64encode(body.encode()).decode()}
    return json.dumps(payload)


def _fill(client: redis.Redis, queued: int) -> None:
    template = _template(client)
    with client.pipeline(transaction=False) as pipe:
        for n in range(queued + UNACKED):
            raw = _copy(template, PageMessage(uuid.uuid4(), uuid.uuid4(), n, 0))
            if n < queued:
                pipe.lpush("marketscan", raw)
            else:  # kombu keeps [message, exchange, routing key] per delivery tag
                held = json.dumps([json.loads(raw), "", "marketscan"])
                pipe.hset(broker_ledger.KOMBU_UNACKED_KEY, f"tag-{n}", held)
            if n % 5000 == 0:
                pipe.execute()
        pipe.execute()


def _raw_read(client: redis.Redis, chunk: int) -> int:
    read = 0
    start = 0
    while batch := client.lrange("marketscan", start, start + chunk - 1):
        start += len(batch)
        read += sum(len(raw) for raw in batch)
    for _, value in client.hscan_iter(broker_ledger.KOMBU_UNACKED_KEY, count=chunk):
        read += len(value)
    return read


def run(bench: Bench) -> list[Row]:
    queued = bench.size(100_000, 10_000)
    bench.flush_redis()
    client = broker_redis.new_client(bench.broker_url, DEFAULT_SENTINEL_MASTER)
    try:
        _fill(client, queued)
        audit = LedgerAudit(QUEUES, seconds=300)
        nowhere = PageMessage(uuid.uuid4(), uuid.uuid4(), 0, 0)
        broker_ledger.publishing(nowhere)
        broker_ledger.sent(nowhere)
        walks, floors = [], []
        for _ in range(3):
            started = time.perf_counter()
            assert audit.lost([nowhere]) == {broker_ledger.fence_of(nowhere)}
            walks.append(time.perf_counter() - started)
            started = time.perf_counter()
            size = _raw_read(client, audit.chunk)
            floors.append(time.perf_counter() - started)
        say(f"{NAME}: {queued:,} queued, {size / 1e6:.0f} MB read per walk")
    finally:
        bench.flush_redis()
        client.close()
    walk, floor = min(walks), min(floors)
    per_message_us = walk / (queued + UNACKED) * 1e6
    return [
        Row(
            f"12 ledger audit walk, {queued:,} queued + {UNACKED:,} unacked messages",
            f"{walk:.2f} s ({per_message_us:.1f} us per message)",
            f"{floor:.2f} s (reads only)",
            "reported (runs at most every 150 s)",
            None,
            detail=f"chunks of {audit.chunk}; {size / 1e6:.0f} MB read per walk",
        )
    ]
