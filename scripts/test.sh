#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing (on a fresh Debian machine,
# as root, without asking), then runs every test of the workspace: unit, store (on SQLite and on
# a throwaway PostgreSQL server the tests start themselves), end-to-end against the real binary
# (the dashboard's in headless Chromium), and the API fuzzing run (schemathesis). Arguments go
# to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

# The version the fuzzing test was verified with (crates/vireo-cli/tests/e2e/api_fuzz.rs).
SCHEMATHESIS_VERSION=4.32.5
venv="target/schemathesis-$SCHEMATHESIS_VERSION"
# The version the manifest's schema test was verified with (crates/vireo-cli/tests/e2e/manifest.rs).
JSONSCHEMA_VERSION=4.26.0

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "installing the wasm32-wasip2 target…" >&2
    rustup target add wasm32-wasip2
fi

# The PostgreSQL store's tests run initdb and pg_ctl from Debian's server package, which puts
# them under /usr/lib/postgresql/<version>/bin rather than on PATH.
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    echo "installing postgresql…" >&2
    apt-get update -q
    apt-get install -y -q postgresql
fi

# Functions' outbound Redis is tested against a real redis-server the tests start themselves.
if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    echo "installing redis-server…" >&2
    apt-get update -q
    apt-get install -y -q redis-server
fi

# Event sources reading NATS JetStream are tested against a real nats-server the tests start.
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
    echo "installing nats-server…" >&2
    apt-get update -q
    apt-get install -y -q nats-server
fi

# Event sources reading RabbitMQ queues are tested against a real broker the tests start (a
# private node of Debian's rabbitmq-server; the package's own system service is not used).
if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    echo "installing rabbitmq-server…" >&2
    apt-get update -q
    apt-get install -y -q rabbitmq-server
fi

# Functions' outbound MQTT is tested against a real mosquitto broker the tests start themselves.
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    echo "installing mosquitto…" >&2
    apt-get update -q
    apt-get install -y -q mosquitto
fi

# Functions' outbound MySQL is tested against a real MariaDB server the tests start themselves.
if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    echo "installing mariadb-server…" >&2
    apt-get update -q
    apt-get install -y -q mariadb-server
fi

# The README tutorial's test runs its blocks as written, and they use curl.
if ! command -v curl >/dev/null 2>&1; then
    echo "installing curl…" >&2
    apt-get update -q
    apt-get install -y -q curl
fi

# The dashboard's browser test drives Debian's Chromium with playwright-core from npm (no
# browser download: it is pointed at /usr/bin/chromium).
if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium…" >&2
    apt-get update -q
    apt-get install -y -q chromium
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "installing nodejs and npm…" >&2
    apt-get update -q
    apt-get install -y -q nodejs npm
fi
# The JavaScript guest fixtures (tests/js) are built with componentize-js from npm.
# npm ci again whenever a lock file differs from the one last installed.
for packages in tests/browser tests/js; do
    if ! cmp -s "$packages/package-lock.json" "$packages/node_modules/.installed-lock.json"; then
        echo "installing the node packages of $packages…" >&2
        (cd "$packages" && npm ci --no-audit --no-fund &&
            cp package-lock.json node_modules/.installed-lock.json)
    fi
done
# The JWT tests generate their signing keys with openssl.
if ! command -v openssl >/dev/null 2>&1; then
    echo "installing openssl…" >&2
    apt-get update -q
    apt-get install -y -q openssl
fi

# schemathesis lives in its own virtual environment under target/, apart from the system's
# Python (which Debian does not let pip change).
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
    echo "installing schemathesis $SCHEMATHESIS_VERSION into $venv…" >&2
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        echo "installing python3 and python3-venv…" >&2
        rm -rf "$venv"
        apt-get update -q
        apt-get install -y -q python3 python3-venv
        python3 -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION"
fi
# The project manifest's JSON Schema is checked with python-jsonschema, in the same environment.
if ! "$venv/bin/python" -c 'import jsonschema' 2>/dev/null; then
    echo "installing jsonschema $JSONSCHEMA_VERSION into $venv…" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "jsonschema==$JSONSCHEMA_VERSION"
fi
export PATH="$PWD/$venv/bin:$PATH"

# The Python template's toolchain (componentize-py and the Spin SDK, pinned by its
# requirements.txt), in a virtual environment of its own that the template tests build with;
# installed again whenever the requirements differ from the ones last installed.
python_template="target/templates-python"
if ! cmp -s templates/python/requirements.txt "$python_template/installed-requirements.txt"; then
    echo "installing the Python template's toolchain into $python_template…" >&2
    rm -rf "$python_template"
    python3 -m venv "$python_template"
    "$python_template/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r templates/python/requirements.txt
    cp templates/python/requirements.txt "$python_template/installed-requirements.txt"
fi

cargo test --workspace "$@"
