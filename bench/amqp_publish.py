"""Publishes numbered messages to a RabbitMQ queue for bench/sources.sh.

Each message's body is {"n": i}, persistent, with a `message_id`; its header `sent-us` holds
the wall-clock microseconds at which it was published, which the source hands to the function
as `x-vireo-msg-sent-us` and Vireo's queue keeps, so latency is measured from the publisher's
own clock on this machine.

  python3 bench/amqp_publish.py URL QUEUE create
  python3 bench/amqp_publish.py URL QUEUE publish COUNT [RATE]

`create` declares the durable QUEUE. `publish` sends COUNT messages through the default
exchange, all at once or at RATE per second in 10 ms steps that catch up with the clock.
Without publisher confirms: the run waits for the messages to reach the function instead.
"""

import sys
import time

import pika


def publish(channel, queue, count, rate):
    start = time.monotonic()
    sent = 0
    while sent < count:
        due = count if rate == 0 else min(count, int((time.monotonic() - start) * rate))
        while sent < due:
            sent += 1
            properties = pika.BasicProperties(
                message_id="%s-%d" % (queue, sent),
                delivery_mode=2,
                headers={"sent-us": str(time.time_ns() // 1000)},
            )
            channel.basic_publish("", queue, b'{"n":%d}' % sent, properties)
        if sent < count:
            channel.connection.sleep(0.01)
    print(sent)


def main(argv):
    if len(argv) < 4 or argv[3] not in ("create", "publish"):
        sys.exit(__doc__)
    url, queue, action = argv[1:4]
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        if action == "create":
            channel.queue_declare(queue, durable=True)
        else:
            count = int(argv[4])
            rate = int(argv[5]) if len(argv) > 5 else 0
            publish(channel, queue, count, rate)
    finally:
        connection.close()


if __name__ == "__main__":
    main(sys.argv)
