# The Longtail app: the `longtail` command and the explorer. docker-compose.yml runs
# it against PostgreSQL.
# NOTE: no test builds this image or runs the compose file, so both are unverified.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1

# The CPU build of the torch release the project is tested with. The default wheel
# on PyPI also pulls in the CUDA libraries, several GB the explorer does not need.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /app
COPY . .
# Editable, because the store finds its Alembic migrations in /app/migrations
# beside the source.
RUN pip install -e . \
    && useradd --create-home longtail \
    && mkdir -p /app/runs \
    && chown longtail /app/runs
USER longtail

EXPOSE 8000
CMD ["longtail", "serve", "--host", "0.0.0.0", "--port", "8000"]
