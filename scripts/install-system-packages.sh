#!/usr/bin/env bash
# The system packages rag-pipeline needs beside its Python ones: Tesseract with the Korean,
# Japanese (horizontal and vertical) and English language data for OCR; with --test, the
# fonts the tests draw their scanned pages with. Installs what is missing on Debian/Ubuntu
# (as root, or through sudo); elsewhere it prints what to install and goes on.
set -euo pipefail
packages=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd tesseract-ocr-kor tesseract-ocr-kor-vert
    tesseract-ocr-jpn tesseract-ocr-jpn-vert tesseract-ocr-chi-sim tesseract-ocr-chi-tra)
if [ "${1:-}" = "--test" ]; then
    packages+=(fonts-dejavu-core fonts-nanum fonts-ipafont-gothic)
fi
if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    if ! command -v tesseract >/dev/null; then
        echo "note: OCR needs Tesseract: on macOS 'brew install tesseract tesseract-lang';" \
            "on Windows the UB Mannheim installer with Korean and Japanese data" >&2
    fi
    exit 0
fi
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=()
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then
        sudo=(sudo)
    else
        echo "note: not root and no sudo: install ${missing[*]} for OCR" >&2
        exit 0
    fi
fi
echo "installing ${missing[*]}" >&2
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
"${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    "${apt[@]}" update -qq >/dev/null && "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
