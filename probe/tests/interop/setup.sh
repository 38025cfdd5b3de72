#!/usr/bin/env bash
# Installs the real clients the interop tests talk to (run as root on Debian 12; idempotent,
# and quick when everything is already there):
#   - libtorrent 2.0.8: Debian's python3-libtorrent (importable from /usr/bin/python3 only);
#   - npm ut_pex 5.0.2 + bittorrent-protocol 5.0.9: `npm ci` from the committed lock file.
# Node 20 and npm must already be installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if /usr/bin/python3 -c 'import libtorrent' 2>/dev/null; then
    echo "setup: libtorrent $(/usr/bin/python3 -c 'import libtorrent; print(libtorrent.__version__)') already installed"
else
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends python3-libtorrent
    /usr/bin/python3 -c 'import libtorrent; print("setup: libtorrent", libtorrent.__version__)'
fi

command -v node >/dev/null || { echo "setup: node is missing (node 20 is needed)" >&2; exit 1; }
cd "$here/js"
# `npm ci` wipes and reinstalls node_modules; skip it when the installed tree already
# matches the lock file (npm writes node_modules/.package-lock.json on install).
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] \
    && [ -d node_modules/ut_pex ] && [ -d node_modules/bittorrent-protocol ]; then
    echo "setup: node modules already installed"
else
    npm ci --no-audit --no-fund
fi
node -e 'const v = (m) => JSON.parse(require("fs").readFileSync(`node_modules/${m}/package.json`)).version;
console.log(`setup: node ${process.version}, ut_pex ${v("ut_pex")}, bittorrent-protocol ${v("bittorrent-protocol")}`)'
