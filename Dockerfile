# syntax=docker/dockerfile:1
# gatewaycerts image: docker build -t gatewaycerts:0.1.0 .
# Two stages: the builder installs the project and its dependencies into a virtual environment; the final
# image copies only that environment (no compiler, no pip cache, no source tree) and runs as the unprivileged
# user 10001. A virtual environment works the same on the official python image and on a distribution's
# Python, which refuses a system-wide `pip install` (PEP 668): `make image-check` builds on both kinds.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/gatewaycerts
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
# Behind a TLS-intercepting proxy, pass its CA as a build secret (docs/deployment.md):
#   docker build --secret id=ca,src=proxy-ca.pem .
# pip alone reads it, from a mount that no layer keeps.
# The dependencies first, in a layer of their own that a change of the code alone reuses: the project's
# metadata without its package installs just them (and an empty project, removed again).
RUN --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && /opt/gatewaycerts/bin/pip install . \
 && /opt/gatewaycerts/bin/pip uninstall --yes gatewaycerts
COPY gatewaycerts ./gatewaycerts
# Then the project itself; pip and setuptools leave the venv once it is installed, and so do the test suites
# some dependencies ship (e.g. acme's, with its test keys): every directory holding a conftest.py.
RUN --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && /opt/gatewaycerts/bin/pip install --no-deps . \
 && /opt/gatewaycerts/bin/pip uninstall --yes pip setuptools \
 && find /opt/gatewaycerts/lib -path '*/site-packages/*' -name conftest.py -printf '%h\n' | xargs -r rm -rf

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/gatewaycerts/bin:$PATH \
    GATEWAYCERTS_HOST=0.0.0.0 \
    GATEWAYCERTS_PORT=8080 \
    GATEWAYCERTS_STATE_DIR=/var/lib/gatewaycerts
# The user may write only to the state directory (and /tmp, where the chart mounts an emptyDir too):
# world-writable directories of the base (/var/tmp, /run/lock) are closed.
RUN groupadd --system --gid 10001 gatewaycerts \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin gatewaycerts \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/gatewaycerts \
 && find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp \) -prune \
        -o -perm -0002 ! -type l -exec chmod o-w {} +
COPY --from=builder /opt/gatewaycerts /opt/gatewaycerts
USER 10001:10001
WORKDIR /var/lib/gatewaycerts
EXPOSE 8080
# Kubernetes uses its own probes (GET /healthz, /readyz); this one serves plain `docker run`.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["gatewaycerts"]
CMD ["serve"]
