# Image for the Chat4All worker, API and CLI (docker-compose.yml, docs/deployment.md).
FROM python:3.11-slim
WORKDIR /app
# The whole build context (.dockerignore leaves out tests, docs, caches and local state): every
# package setup.cfg declares is in it, and so is cql/schema.cql, which `stack bootstrap` reads.
COPY . .
# Installed in place: the importable packages are exactly those of setup.cfg's
# [options.packages.find] (setuptools' editable finder maps only them), and chat4all's
# REPO_ROOT is /app, where cql/ is.
RUN pip install --no-cache-dir -e . \
 && install -d -o nobody -g nogroup /data
ENV CHAT4ALL_STACK_DIR=/data CHAT4ALL_DATA_DIR=/data/worker
USER nobody
