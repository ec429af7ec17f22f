#!/usr/bin/env python3
"""Times how long an alias move made through one Vireo node takes to route on another.

Usage: cluster-propagation.py FIRST SECOND MOVES   (addresses as HOST:PORT; VIREO_ADMIN_KEY set)

The function `app` must have version 1 answering hello's body and version 2 another. MOVES
times, the alias `prod` is moved to the other version through FIRST; SECOND is then asked for
app@prod every millisecond until it answers with that version. Prints one line per move: the
milliseconds from the move's answer to SECOND's first answer from the new version.
"""

import http.client
import json
import os
import sys
import time

HELLO = b"Hello, Vireo!\n"
DEADLINE_S = 30


def main() -> None:
    first, second, moves = sys.argv[1], sys.argv[2], int(sys.argv[3])
    key = os.environ["VIREO_ADMIN_KEY"]
    admin = http.client.HTTPConnection(first, timeout=DEADLINE_S)
    reader = http.client.HTTPConnection(second, timeout=DEADLINE_S)

    def move(version: int) -> None:
        body = json.dumps({"version": version})
        admin.request(
            "PUT",
            "/v1/namespaces/default/functions/app/aliases/prod",
            body=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        answer = admin.getresponse()
        answer.read()
        if answer.status != 200:
            sys.exit(f"moving prod to {version} answered {answer.status}")

    def routes_to(version: int) -> bool:
        reader.request("GET", "/fn/default/app@prod/")
        answer = reader.getresponse()
        body = answer.read()
        if answer.status != 200:
            sys.exit(f"app@prod answered {answer.status} on {second}")
        return (body == HELLO) == (version == 1)

    move(1)
    while not routes_to(1):
        time.sleep(0.001)
    for n in range(moves):
        version = 2 if n % 2 == 0 else 1
        move(version)
        moved = time.monotonic()
        while not routes_to(version):
            if time.monotonic() - moved > DEADLINE_S:
                sys.exit(f"move {n} did not reach {second} within {DEADLINE_S} s")
            time.sleep(0.001)
        print(f"{(time.monotonic() - moved) * 1000:.3f}", flush=True)


if __name__ == "__main__":
    main()
