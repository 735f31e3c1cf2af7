# syntax=docker/dockerfile:1
# marketscan's one image: a Celery worker by default; docker-compose.yml also runs beat,
# Flower and the migrations from it. Build with `docker compose build`.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

# A fixed uid, so files on named volumes (beat schedule, Flower state) keep their owner
# across image rebuilds. /data is created here so a fresh named volume inherits the owner.
RUN groupadd --system --gid 10001 marketscan \
    && useradd --system --uid 10001 --gid marketscan --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin marketscan \
    && install --directory --owner=marketscan --group=marketscan /data

WORKDIR /app

# The source tree stays in /app and comes first on PYTHONPATH: worker.migrate finds
# migrations/ next to worker/, and celery finds celeryconfig.py from any directory.
COPY pyproject.toml README.md uv.lock ./
COPY deploy/uv-requirements.txt ./deploy/
COPY worker ./worker
COPY tasks ./tasks
COPY models ./models
COPY migrations ./migrations
COPY celeryconfig.py alembic.ini ./
# The image holds the versions `make test` tested: uv.lock's runtime set, hash-checked,
# then the project itself on top with no resolution of its own.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --require-hashes --no-deps -r deploy/uv-requirements.txt \
    && uv export --frozen --no-dev --no-emit-project --format requirements-txt \
        --output-file /tmp/requirements.txt \
    && pip install --require-hashes --no-deps -r /tmp/requirements.txt \
    && pip install --no-deps . \
    && pip uninstall --yes uv \
    && rm -rf build ./*.egg-info /tmp/requirements.txt

USER marketscan

# Warm shutdown on SIGTERM: running pages commit what they have and hand over.
STOPSIGNAL SIGTERM
CMD ["celery", "-A", "worker", "worker", "--loglevel=INFO"]
