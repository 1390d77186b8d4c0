# joulebot: the bots, the measurement worker, the dashboard and the CLI in one image.
#
#   docker build -t joulebot .
#   docker run --rm joulebot ask "What is the capital of France?"
#
# Build arguments:
#   BASE      a Debian bookworm image with python3 (≥ 3.11) and its venv module; the default is
#             Docker Hub's. Without Docker Hub, make one with debootstrap (README, "Run it with Docker").
#   EXTRA_CA  a PEM file inside the build context, trusted by pip in the build stage only (a proxy
#             that intercepts TLS, as on corporate networks); it never reaches the final image.
#   LLAMA_CPP_PYTHON  the llama-cpp-python version compiled in its own layer (kept across rebuilds).
# No BuildKit-only syntax (CI builds it with the classic builder, DOCKER_BUILDKIT=0); behind a proxy,
# `--network host` lets the build reach the package index the way the host does.

ARG BASE=python:3.12-slim-bookworm

FROM ${BASE} AS build
ARG EXTRA_CA=
ARG LLAMA_CPP_PYTHON=0.3.36
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The compilers for llama.cpp (cmake and ninja come from PyPI, as the package's build asks for them).
RUN apt-get update && apt-get install -y --no-install-recommends build-essential ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# pip's trust: the base image's CA bundle, plus EXTRA_CA when given. Without it, the COPY takes
# .dockerignore as a stand-in that is never read (COPY needs a source; this one rarely changes).
COPY ${EXTRA_CA:-.dockerignore} /tmp/extra-ca
RUN cat /etc/ssl/certs/ca-certificates.crt > /tmp/pip-ca.pem \
    && if [ -n "${EXTRA_CA}" ]; then cat /tmp/extra-ca >> /tmp/pip-ca.pem; fi \
    && python3 -m venv /opt/joulebot \
    && PIP_CERT=/tmp/pip-ca.pem /opt/joulebot/bin/pip install --upgrade pip setuptools wheel
# llama.cpp for any x86-64 with AVX2 (not -march=native: a build machine's CPU is not the one it runs on);
# the x86 flags are ignored on ARM. Its own layer: rebuilding joulebot does not compile it again.
RUN PIP_CERT=/tmp/pip-ca.pem \
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
    /opt/joulebot/bin/pip install "llama-cpp-python==${LLAMA_CPP_PYTHON}"
# The other dependencies, read from pyproject.toml: a code change reinstalls none of them.
COPY pyproject.toml /tmp/pyproject.toml
RUN /opt/joulebot/bin/python -c 'import tomllib; p = tomllib.load(open("/tmp/pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["postgres"]))' > /tmp/requirements.txt \
    && PIP_CERT=/tmp/pip-ca.pem /opt/joulebot/bin/pip install -r /tmp/requirements.txt
COPY pyproject.toml README.md /src/
COPY joulebot /src/joulebot
# No build tool stays behind: pip, setuptools and wheel leave the virtualenv once joulebot is in.
RUN PIP_CERT=/tmp/pip-ca.pem /opt/joulebot/bin/pip install --no-deps /src \
    && /opt/joulebot/bin/pip uninstall -y pip setuptools wheel


FROM ${BASE}
ARG DEBIAN_FRONTEND=noninteractive
# libgomp: llama.cpp's threads (OpenMP). Nothing else from the build stage but the virtualenv.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --groups dialout --create-home --home-dir /home/joulebot joulebot \
    && install -d -o joulebot -g joulebot -m 0700 /data
COPY --from=build /opt/joulebot /opt/joulebot
ENV PATH=/opt/joulebot/bin:$PATH \
    JOULEBOT_DATA_DIR=/data \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER joulebot
# The working directory holds no .env: settings come from the container's environment.
WORKDIR /home/joulebot
VOLUME /data
# The queue answers (compose.yaml gives the worker and the dashboard their own checks).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["joulebot", "health"]
ENTRYPOINT ["joulebot"]
CMD ["--help"]
