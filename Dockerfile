# syntax=docker/dockerfile:1
# umbrellabot: one process (Slack bot + scheduled ingest + health server) on a small VM.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Every dependency ships wheels, so the build needs no compiler either.
RUN python -m venv /opt/umbrellabot
COPY pyproject.toml README.md ./
COPY umbrellabot ./umbrellabot
COPY config ./config
RUN /opt/umbrellabot/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="umbrellabot" \
      org.opencontainers.image.description="CloudTrail to Slack: enrich, alert, answer." \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 umbrellabot \
    && useradd --system --uid 10001 --gid umbrellabot --no-create-home \
       --home-dir /var/lib/umbrellabot --shell /usr/sbin/nologin umbrellabot \
    && mkdir -p /var/lib/umbrellabot \
    && chown umbrellabot:umbrellabot /var/lib/umbrellabot
COPY --from=build /opt/umbrellabot /opt/umbrellabot
ENV PATH=/opt/umbrellabot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STATE_DIR=/var/lib/umbrellabot \
    HEALTH_PORT=8080 \
    LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/umbrellabot
VOLUME ["/var/lib/umbrellabot"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["umbrellabot", "healthcheck"]
ENTRYPOINT ["umbrellabot"]
CMD ["run"]
