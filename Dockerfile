# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY trial ./trial
COPY capture ./capture
COPY safety ./safety
COPY reports ./reports
RUN pip install --no-cache-dir .
COPY . .
RUN DEBUG=1 python manage.py compile_translations && DEBUG=1 python manage.py collectstatic --noinput
# An unprivileged user runs every process; it may write only the media folder (the reports' PDFs).
RUN groupadd --system --gid 10001 edc && useradd --system --uid 10001 --gid edc --no-create-home edc \
    && mkdir -p /data/media && chown edc:edc /data/media
USER edc
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
