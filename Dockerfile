# syntax=docker/dockerfile:1
# WattWise: `wattwise serve --scaler --extender --in-cluster` (deploy/), or any other subcommand.
#   docker build -t ghcr.io/wattwise/wattwise:0.1.0 .
# The builder makes wheels of WattWise and every dependency; the image installs those wheels and
# nothing else: no compiler, no build tools, no pip cache, no source tree. It runs as a numeric
# non-root user and writes nothing outside /tmp, so it runs with a read-only root file system.

FROM python:3.11-slim AS builder
WORKDIR /src
# .dockerignore admits only what the wheel is built from, and the pinned versions of its
# dependencies (constraints.txt), so two builds of one commit install the same packages.
COPY . .
RUN pip wheel --no-cache-dir --constraint constraints.txt --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp
# Wheels only, from the builder (mounted for this step, so they never land in a layer); pip
# compiles the bytecode now, as root, because at run time nothing may be written. setuptools and
# wheel are build tools nothing here needs at run time.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --only-binary=:all: --find-links=/wheels /wheels/wattwise-*.whl \
    && pip uninstall --no-cache-dir -y setuptools wheel
USER 65532:65532
EXPOSE 6000 6001 8888 8889 9102
ENTRYPOINT ["wattwise"]
CMD ["--help"]
