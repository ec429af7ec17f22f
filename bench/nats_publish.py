"""Publishes numbered messages to a NATS JetStream stream for bench/sources.sh.

Each message's body is {"n": i}; its header `sent-us` holds the wall-clock microseconds at
which it was published, which the source hands to the function as `x-vireo-msg-sent-us` and
Vireo's queue keeps, so latency is measured from the publisher's own clock on this machine.

  python3 bench/nats_publish.py URL STREAM SUBJECT create
  python3 bench/nats_publish.py URL STREAM SUBJECT publish COUNT [RATE]

`create` adds the stream (file storage, capturing SUBJECT). `publish` sends COUNT messages,
all at once or at RATE per second in 10 ms steps that catch up with the clock, waits until
the stream has stored them, and prints how many it holds.
"""

import asyncio
import sys
import time

import nats
from nats.js.api import StorageType, StreamConfig


async def create(js, stream, subject):
    await js.add_stream(StreamConfig(name=stream, subjects=[subject], storage=StorageType.FILE))


async def publish(nc, js, stream, subject, count, rate):
    start = time.monotonic()
    sent = 0
    while sent < count:
        due = count if rate == 0 else min(count, int((time.monotonic() - start) * rate))
        while sent < due:
            sent += 1
            headers = {"sent-us": str(time.time_ns() // 1000)}
            await nc.publish(subject, b'{"n":%d}' % sent, headers=headers)
        await nc.flush()
        if sent < count:
            await asyncio.sleep(0.01)
    # Core publishes are not acknowledged one by one: wait until the stream holds them all.
    deadline = time.monotonic() + 60
    while True:
        info = await js.stream_info(stream)
        if info.state.messages >= count or time.monotonic() > deadline:
            print(info.state.messages)
            return
        await asyncio.sleep(0.05)


async def main(argv):
    if len(argv) < 5 or argv[4] not in ("create", "publish"):
        sys.exit(__doc__)
    url, stream, subject, action = argv[1:5]
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        if action == "create":
            await create(js, stream, subject)
        else:
            count = int(argv[5])
            rate = int(argv[6]) if len(argv) > 6 else 0
            await publish(nc, js, stream, subject, count, rate)
    finally:
        await nc.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv))
