#!/usr/bin/env bash
# Debian packages the monitor needs beside Python:
#   fonts-noto-cjk     Chinese glyphs in PDF reports and browser screenshots
#   libpango, harfbuzz WeasyPrint's text layout for PDF reports
#   poppler-utils      pdftotext/pdftoppm, used by the report tests
#   chromium           the headless browser of the web tests
#   libreoffice-writer-nogui  renders DOCX reports to PDF/PNG in the report tests
#   espeak-ng          a second synthetic voice for the different-voices diarization check
# Installs what is missing when run as root with apt-get; otherwise says what to install.
set -euo pipefail
PACKAGES=(fonts-noto-cjk fontconfig libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 poppler-utils chromium libreoffice-writer-nogui espeak-ng)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "note: please install these Debian packages for PDF reports, browser tests and the voice check: ${missing[*]}" >&2
fi
