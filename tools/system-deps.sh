#!/usr/bin/env bash
# The Debian packages that `make serve` and `make test` need, installed when missing.
#
#   tools/system-deps.sh serve       what building and serving the site needs
#   tools/system-deps.sh test        that, and what the browser tests, the PDF test and
#                                    `make translations` need
#   tools/system-deps.sh lighthouse  that, and the full Chromium (`make lighthouse`)
#
# Missing packages are installed with apt-get when running as root, through sudo when sudo
# works without a password, and otherwise the script stops at once with one line naming the
# exact command to run. Nothing is downloaded outside Debian's packages: the browser tests
# drive Debian's Chromium, never a browser of Playwright's own.
#
# BNNOTES_SYSTEM_DEPS_DRY_RUN=1 prints what would be installed and exits 1 when something is
# missing, without installing (tests/test_system_deps.py uses it).
set -euo pipefail

target=${1:-test}
case "$target" in
  serve | test | lighthouse) ;;
  *)
    echo "tools/system-deps.sh: unknown target '$target' (expected 'serve', 'test' or 'lighthouse')" >&2
    exit 2
    ;;
esac

need=()
# Building the site: node renders KaTeX at build time, npm installs it.
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ "$target" != serve ]; then
  command -v git >/dev/null || need+=(git) # make translations and its test
  # The browser tests and the PDF drive Chromium's headless shell (the browser without its
  # user interface: the same engine, about a third less work per page than the full
  # browser). The CJK fonts render the Korean and Chinese pages and figures.
  command -v chromium-headless-shell >/dev/null || need+=(chromium-headless-shell)
  if ! command -v dpkg >/dev/null || ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then
    need+=(fonts-noto-cjk)
  fi
  command -v pdftotext >/dev/null || need+=(poppler-utils) # reads the PDFs back
fi
if [ "$target" = lighthouse ]; then
  # Lighthouse measures the site in the browser readers use.
  command -v chromium >/dev/null || need+=(chromium)
fi

((${#need[@]})) || exit 0

command="apt-get install -y --no-install-recommends ${need[*]}"
if [ -n "${BNNOTES_SYSTEM_DEPS_DRY_RUN:-}" ]; then
  echo "missing Debian packages: ${need[*]} (install with: $command)"
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo)
else
  echo "missing Debian packages: ${need[*]}; run: sudo $command" >&2
  exit 1
fi
echo "installing missing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${need[@]}"
