# Image for the Chat4All worker, API and CLI (docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY chat4all chat4all
COPY cli cli
COPY streams streams
COPY agents agents
COPY tables tables
COPY api api
COPY gateway gateway
COPY connectors connectors
COPY cql cql
COPY stack stack
RUN pip install --no-cache-dir .
ENV CHAT4ALL_STACK_DIR=/data CHAT4ALL_DATA_DIR=/data/worker
USER nobody
