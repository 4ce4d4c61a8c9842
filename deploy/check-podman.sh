#!/usr/bin/env bash
# Runs the locally built ptcd in a real container (podman, the default capability set and seccomp
# profile, no image registry: the container's root is a directory with the host's /usr mounted
# read-only) and checks `ptcd doctor` and a client on the shared socket volume.
#
#   bash deploy/check-podman.sh [--landlock-max-abi N]
#
# Needs podman (Debian: `apt-get install podman runc`). On hosts with hybrid cgroups crun refuses
# to start containers: the script uses runc. Where the host's root lacks CAP_SYS_RESOURCE the
# runtime cannot raise rlimits: the script asks for limits below the host's.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PTCD_BIN:-target/debug/ptcd}
WORK=$(mktemp -d /tmp/ptcd-podman-XXXXXX)
trap 'podman rm -f ptcd-podman-check >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{usr,etc,proc,sys,dev,run,tmp,ptcd} "$WORK/sock"
chmod 1777 "$ROOTFS/tmp"
for d in lib lib64 bin sbin; do ln -s "usr/$d" "$ROOTFS/$d"; done
cp /etc/passwd /etc/group /etc/ld.so.cache "$ROOTFS/etc/"
cp "$BIN" "$ROOTFS/ptcd/ptcd"
RUN=(podman --runtime runc run --ulimit nofile=1024:1024 --ulimit nproc=4096:4096
     -v /usr:/usr:ro --network none)

echo "==> ptcd doctor in the container"
"${RUN[@]}" --rm --rootfs "$ROOTFS:O" /ptcd/ptcd doctor "$@"

echo "==> ptcd serve in the container, a client on the shared socket volume"
"${RUN[@]}" -d --name ptcd-podman-check -v "$WORK/sock:/run/ptcd" --rootfs "$ROOTFS:O" \
    /ptcd/ptcd serve --socket /run/ptcd/ptcd.sock "$@" >/dev/null
for _ in $(seq 100); do [ -S "$WORK/sock/ptcd.sock" ] && break; sleep 0.1; done
python3 - "$WORK/sock/ptcd.sock" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rwb")
def call(i, method, params):
    f.write(json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}).encode() + b"\n"); f.flush()
    while True:
        msg = json.loads(f.readline())
        if msg.get("id") == i:
            return msg
sandbox = call(1, "initialize", {})["result"]["sandbox"]
print("sandbox:", json.dumps(sandbox))
r = call(2, "run", {"code": "import os; print(os.getuid())"})["result"]
assert r["status"] == "ok" and int(r["stdout"]) >= 64000, r
r = call(3, "run", {"code": "import socket; socket.socket()"})["result"]
assert r["status"] == "error" and r["error"]["type"] == "PermissionError", r
print("ok: runs execute confined as their own uid; sockets are denied")
PY
