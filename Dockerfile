# rag serve in a container: CPU torch first (the bare requirement would pull the CUDA build).
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    RAG_DATA_DIR=/data

WORKDIR /app
# OCR: Tesseract's language data for English, Korean and Japanese (horizontal and vertical).
COPY scripts/install-system-packages.sh ./scripts/
RUN bash scripts/install-system-packages.sh && rm -rf /var/lib/apt/lists/*
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md LICENSE ./
COPY rag_pipeline ./rag_pipeline
RUN pip install ".[postgres]" && useradd --create-home --uid 1000 rag && mkdir -p /data && chown rag /data

USER rag
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/health')"
CMD ["rag", "serve", "--host", "0.0.0.0", "--port", "3000"]
