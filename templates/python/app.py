"""An HTTP function for Vireo, written with the Spin SDK for Python: it greets whoever the
request body names, with a greeting from a variable, counts its visits in the `default`
key-value store and says which stage its environment variable names."""

import os

from spin_sdk import http, key_value, variables
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        who = (request.body or b"").decode("utf-8", "replace").strip() or "world"
        # `variables` in vireo.toml's [settings]; `vireo deploy --var greeting=...` changes it.
        greeting = variables.get("greeting")
        # `env` in [settings]: plain environment variables.
        stage = os.environ.get("STAGE", "unset")
        visits = count_visit()
        text = f"{greeting}, {who}!\nvisits: {visits}\nstage: {stage}\n"
        return Response(200, {"content-type": "text/plain; charset=utf-8"}, text.encode("utf-8"))


def count_visit() -> int:
    """Adds one to the `visits` key of the `default` store (granted by `key_value_stores`) and
    returns the new count. Two requests at the same moment may both read the same count: fine
    for a greeting, not for money."""
    with key_value.open_default() as store:
        stored = store.get("visits")
        visits = int(stored.decode()) + 1 if stored else 1
        store.set("visits", str(visits).encode())
        return visits
