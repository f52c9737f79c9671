# syntax=docker/dockerfile:1
# The recmatch API image: a wheel built in one stage, installed into a slim runtime that runs as a non-root user.
#   docker build -t recmatch .
#   docker run -p 127.0.0.1:8000:8000 -e RECMATCH_ES_URL=http://host.docker.internal:9200 recmatch

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The wheel carries the mappings as recmatch/index_mappings (pyproject force-includes this directory).
COPY index_mappings ./index_mappings
# recmatch and every dependency as wheels, so the runtime stage installs offline and without build tools.
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 recmatch \
    && useradd --system --uid 10001 --gid recmatch --home-dir /app --create-home --shell /usr/sbin/nologin recmatch
# Bind-mount the wheels instead of copying them, so they never become a layer of the image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/recmatch-*.whl
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# No curl in the slim image: Python asks /healthz; a refused connection or an HTTP error exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as r; r.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["recmatch", "serve", "--host", "0.0.0.0", "--port", "8000"]
