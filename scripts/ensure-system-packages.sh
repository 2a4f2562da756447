#!/usr/bin/env bash
# Make sure the OCR system tools exist: tesseract with German data, and poppler's pdftoppm; and the
# DejaVu fonts that invoice PDFs embed.
# Also Chromium for the browser test of the Dagster UI: Playwright drives the Debian package's
# /usr/bin/chromium (no browser is ever downloaded). It is installed where we are root; failing
# that, only a warning: the browser test is then skipped with the reason (and fails under CI).
set -euo pipefail

# apt-get update and install, one checkout at a time: two make installs at once (two checkouts, a
# CI run beside a session) each took dpkg's lock and the second failed on it instead of waiting.
# flock queues ours; DPkg::Lock::Timeout makes apt wait for anyone else's.
apt_install() {
    (
        if command -v flock >/dev/null 2>&1; then
            exec 9>/var/lock/invoice-pipelines-apt.lock
            flock -w 900 9 || true
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get -o DPkg::Lock::Timeout=900 update -qq &&
            apt-get -o DPkg::Lock::Timeout=900 install -y -qq "$@"
    )
}

CHROMIUM=/usr/bin/chromium
if [ ! -x "$CHROMIUM" ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        if ! apt_install chromium || [ ! -x "$CHROMIUM" ]; then
            echo "ensure-system-packages: could not install chromium; the browser test will be skipped" >&2
        fi
    else
        echo "ensure-system-packages: $CHROMIUM is missing (sudo apt-get install -y chromium); the browser test will be skipped" >&2
    fi
fi

# zbarimg reads the EPC QR code of a printed demo invoice back in a test, as a banking app would;
# like Chromium, a test tool only: installed where we are root, else that test is skipped
if ! command -v zbarimg >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt_install zbar-tools ||
            echo "ensure-system-packages: could not install zbar-tools; the QR code test will be skipped" >&2
    else
        echo "ensure-system-packages: zbarimg is missing (sudo apt-get install -y zbar-tools); the QR code test will be skipped" >&2
    fi
fi

# Dovecot's IMAP server is the real mail server the mailbox tests, `bench mailbox` and the demo's
# mailbox run on loopback (invoice_pipelines_devtools/standins/dovecot.py starts it with its own
# configuration; the package's system service is never started or used). Needed under CI.
if ! [ -x /usr/sbin/dovecot ] && ! command -v dovecot >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        # in a container (CI) its service is not started; where an init system starts it, it
        # listens on 143/993 with /etc/dovecot, beside ours and unused by the project
        apt_install dovecot-imapd ||
            { echo "ensure-system-packages: could not install dovecot-imapd (the IMAP stand-in)" >&2; exit 1; }
    else
        echo "ensure-system-packages: dovecot is missing (sudo apt-get install -y dovecot-imapd); the mailbox tests will be skipped" >&2
    fi
fi

PACKAGES="tesseract-ocr tesseract-ocr-deu poppler-utils fonts-dejavu-core"
FONT_DIR="${INVOICE_PIPELINES_FONT_DIR:-/usr/share/fonts/truetype/dejavu}"

missing() {
    command -v pdftoppm >/dev/null 2>&1 || return 0
    command -v tesseract >/dev/null 2>&1 || return 0
    # The binary alone is not enough: invoices are German, and without deu Tesseract
    # quietly reads them with English data only.
    tesseract --list-langs 2>/dev/null | grep -qx deu || return 0
    [ -f "$FONT_DIR/DejaVuSans.ttf" ] || return 0
    return 1
}

if ! missing; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    apt_install $PACKAGES
    if missing; then
        echo "ensure-system-packages: installed $PACKAGES but tesseract (deu), pdftoppm or the DejaVu fonts are still missing" >&2
        exit 1
    fi
    exit 0
fi

echo "ensure-system-packages: tesseract (with German data), pdftoppm or the DejaVu fonts are missing. Run:" >&2
echo "    sudo apt-get install -y $PACKAGES" >&2
exit 1
