#!/usr/bin/env bash
# The aarch64 wheelhouse the SD image's Python installs madoguchi from, offline (hw/image/README.md).
# Run hw/image/wheelhouse.sh --help for usage.
set -euo pipefail
umask 022

src=${BASH_SOURCE[0]}
[[ $src == */* ]] || src=./$src
HERE=$(cd "${src%/*}" && pwd)
SELF=$HERE/${src##*/}
REPO=$(cd "$HERE/../.." && pwd)
PROG=wheelhouse.sh

usage() {
    cat <<EOF
Usage: hw/image/$PROG --suite bookworm|trixie --out DIR [--cache DIR] [--wheel madoguchi-X.whl]
                      [--refresh] [--check]

Writes into DIR the wheels that install madoguchi on the image's Python (bookworm: CPython 3.11,
trixie: 3.13) on aarch64, with DIR/wheels.tsv (file, sha256, licence, built here/downloaded).
The set is resolved and the sdists are built inside an arm64 chroot of the suite under
qemu-user, so pip evaluates the environment markers (platform_machine == 'aarch64') as the Pi
will. Wheels are cached; a warm run needs no network.

  --suite NAME   bookworm (cp311) or trixie (cp313)
  --out DIR      where the wheels go (new, empty, or an earlier output of this script: replaced)
  --cache DIR    the chroot tarball and the wheels built or downloaded so far
                 (default \${XDG_CACHE_HOME:-\$HOME/.cache}/madoguchi-image)
  --wheel FILE   the madoguchi wheel to install (default: built from this checkout)
  --refresh      resolve against the package index even if the cache already satisfies
                 madoguchi (picks up newer releases; a new sdist version is built once)
  --check        then install DIR into a fresh venv in the chroot, offline, and import the
                 native modules (icu, pyaudio, spidev, lgpio, numpy, ctranslate2, ...); an
                 import killed by a signal is reported but not a failure (qemu-user: onnxruntime
                 segfaults on import there)
  -h, --help     this help

Needs root (chroot, mounts), debootstrap, qemu-user-static with binfmt_misc, ~1.5 GB free in
the cache. The Debian mirror is the host's own (apt sources), or \$MADOGUCHI_DEBIAN_MIRROR.
EOF
}

die() { echo "$PROG: $*" >&2; exit 1; }
usage_error() { echo "$PROG: $* (see --help)" >&2; exit 2; }
say() { printf '[%2d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
took() { local s=$((SECONDS - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

SUITE="" OUT="" CACHE="" WHEEL="" REFRESH=0 CHECK=0
while (($#)); do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --refresh) REFRESH=1 && shift ;;
        --check) CHECK=1 && shift ;;
        --suite|--out|--cache|--wheel)
            (($# >= 2)) || usage_error "$1 needs a value"
            name=${1#--} && declare "${name^^}=$2" && shift 2 ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done
case $SUITE in
    bookworm) PY=311 ;;
    trixie) PY=313 ;;
    "") usage_error "--suite is required" ;;
    *) usage_error "--suite must be bookworm or trixie, not $SUITE" ;;
esac
[[ -n $OUT ]] || usage_error "--out is required"
CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/madoguchi-image}
if [[ -n $WHEEL ]]; then
    [[ -f $WHEEL ]] || die "--wheel not found: $WHEEL"
    [[ ${WHEEL##*/} == madoguchi-*-none-any.whl ]] || die "--wheel must be a madoguchi-X-py3-none-any.whl, not ${WHEEL##*/}"
    WHEEL=$(cd "$(dirname "$WHEEL")" && pwd)/${WHEEL##*/}
fi

# ---------------------------------------------------------------------------------------------
say "Checking the host"
((EUID == 0)) || die "needs root (debootstrap, chroot and bind mounts): run it with sudo"
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
for tool in chroot mount umount zstd tar sha256sum flock python3; do
    command -v "$tool" >/dev/null || die "missing required tool: $tool"
done
QEMU=$(command -v qemu-aarch64-static || true)
[[ -n $QEMU ]] || die "qemu-user-static is missing (aarch64 binaries cannot run here): apt-get install qemu-user-static"
BINFMT=/proc/sys/fs/binfmt_misc
binfmt_help="mount -t binfmt_misc binfmt_misc $BINFMT, then /usr/lib/systemd/systemd-binfmt (or update-binfmts --enable qemu-aarch64)"
[[ -e $BINFMT/status ]] || die "binfmt_misc is not mounted, so aarch64 binaries cannot run: $binfmt_help"
[[ -e $BINFMT/qemu-aarch64 ]] || die "no binfmt handler for aarch64 is registered: $binfmt_help"
grep -qx enabled "$BINFMT/qemu-aarch64" || die "the aarch64 binfmt handler is disabled: echo 1 > $BINFMT/qemu-aarch64"
QEMU_INTERP=$(sed -n 's/^interpreter //p' "$BINFMT/qemu-aarch64")
# Without the F flag the kernel opens the interpreter inside the chroot, so it must be there too.
QEMU_FIXED=0
grep -q '^flags:.*F' "$BINFMT/qemu-aarch64" && QEMU_FIXED=1

mirror=${MADOGUCHI_DEBIAN_MIRROR:-}
if [[ -z $mirror ]]; then
    shopt -s nullglob
    for f in /etc/apt/sources.list.d/*.sources; do
        mirror=$(awk 'BEGIN { RS = "" }
            /(^|\n)Types:[^\n]*deb([ \t]|\n|$)/ && !/security/ && !/(^|\n)Enabled: *no/ {
                if (match($0, /(^|\n)URIs:[ \t]*[^ \t\n]+/)) { s = substr($0, RSTART, RLENGTH); sub(/.*URIs:[ \t]*/, "", s); print s; exit }
            }' "$f")
        [[ -n $mirror ]] && break
    done
    if [[ -z $mirror ]]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            mirror=$(awk '$1 == "deb" { sub(/\[[^]]*\][ \t]*/, ""); if ($2 !~ /security/ && $3 !~ /security/) { print $2; exit } }' "$f")
            [[ -n $mirror ]] && break
        done
    fi
    shopt -u nullglob
fi
[[ -n $mirror ]] || die "no Debian mirror in the host's apt sources (/etc/apt/sources.list.d/*.sources, /etc/apt/sources.list): set MADOGUCHI_DEBIAN_MIRROR=URL"

if [[ -e $OUT ]]; then
    [[ -d $OUT ]] || die "--out is not a directory: $OUT"
    others=$(find "$OUT" -mindepth 1 -maxdepth 1 ! -name '*.whl' ! -name wheels.tsv -printf '%f ')
    [[ -z $others ]] || die "--out holds files this script did not write ($others): use a new or empty directory"
    if compgen -G "$OUT/*.whl" >/dev/null && [[ ! -f $OUT/wheels.tsv ]]; then
        die "--out holds wheels but no wheels.tsv, so not an earlier output of this script: use a new or empty directory"
    fi
fi
mkdir -p "$OUT" "$CACHE/logs"
OUT=$(cd "$OUT" && pwd)
CACHE=$(cd "$CACHE" && pwd)
exec 9>"$CACHE/lock"
flock -n 9 || die "another $PROG is using $CACHE; wait for it (or give --cache DIR)"
WHEELS=$CACHE/wheels-$SUITE     # every wheel downloaded or built so far for this suite
LEDGER=$CACHE/built-$SUITE.txt  # the file names of those built here (pip: "Created wheel for")
mkdir -p "$WHEELS"
touch "$LEDGER"
STAMP=$(date +%Y%m%d-%H%M%S)
say "    suite $SUITE (cp$PY), mirror $mirror, cache $CACHE"

# Everything set up is torn down here, on success, error or Ctrl-C alike: first every mount
# under the work directory (deepest first), then the directory, never through a mount.
WORK=""
unmount_all() {
    local m
    [[ -n $WORK ]] || return 0
    while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" || echo "$PROG: could not unmount $m" >&2
    done < <(awk -v p="$WORK/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r)
}
cleanup() {
    set +e
    rm -f "$WHEELS"/madoguchi-*.whl
    [[ -n $WORK && -d $WORK ]] || return
    unmount_all
    if awk -v p="$WORK/" 'index($2, p) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
        echo "$PROG: $WORK still has mounts; left in place (unmount them, then rm -rf it)" >&2
    else
        rm -rf --one-file-system "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# follow LOG MODE: copies a command's output (stdin) to LOG and prints its progress: for
# debootstrap its phases, for pip each wheel it builds with its time; for all, a line at least
# every minute. It returns 0, so under pipefail `cmd | follow ...` has cmd's status.
follow() {
    local log=$1 mode=$2 line="" chunk rc eof=0 last=$SECONDS start=$SECONDS
    local building="" t_build=0 saved=0 collected=0 verb
    local -A seen=()
    while ((!eof)); do
        if IFS= read -r -t 60 chunk; then
            line+=$chunk
        else
            rc=$?
            line+=$chunk
            if ((rc > 128)); then  # a minute of silence
                if [[ -n $building ]]; then
                    say "      ... still building $building ($(took "$t_build"))"
                elif [[ $mode == pip ]]; then
                    say "      ... $(took "$start") so far, $collected requirement(s) collected"
                else
                    say "      ... $(took "$start") so far"
                fi
                last=$SECONDS
                continue
            fi
            eof=1
            [[ -n $line ]] || break
        fi
        printf '%s\n' "$line" >>"$log"
        case $mode:$line in
            debootstrap:I:\ *)
                verb=${line#I: } && verb=${verb%% *}
                if [[ -z ${seen[$verb]:-} ]]; then
                    seen[$verb]=1 && say "      ${line#I: }" && last=$SECONDS
                fi ;;
            pip:*"Building wheel for "*": started"*)
                building=${line#*Building wheel for } && building=${building%% *}
                t_build=$SECONDS && last=$SECONDS
                say "    Building wheel for $building" ;;
            pip:*"Building wheel for "*": still running"*)
                if ((SECONDS - last >= 60)); then say "      ... still building $building ($(took "$t_build"))" && last=$SECONDS; fi ;;
            pip:*"Building wheel for "*": finished with status"*)
                say "      $building: ${line##*finished with status } in $(took "$t_build")"
                building="" && last=$SECONDS ;;
            pip:*"Created wheel for "*"filename="*)
                chunk=${line#*filename=} && echo "${chunk%% *}" >>"$LEDGER" ;;
            pip:"Collecting "*) collected=$((collected + 1)) ;;
            pip:*"Saved "*) saved=$((saved + 1)) ;;
        esac
        if ((SECONDS - last >= 60)); then
            if [[ $mode == pip ]]; then
                say "      ... $(took "$start") so far, $collected requirement(s) collected"
            else
                say "      ... $(took "$start") so far: ${line:0:90}"
            fi
            last=$SECONDS
        fi
        line=""
    done
    [[ $mode != pip ]] || say "    $saved new wheel(s) in the cache"
}

# fail LOG WHAT: the last lines of LOG, and where the whole of it is.
fail() {
    echo "---- last lines of $1" >&2
    tail -n 30 "$1" >&2
    echo "----" >&2
    die "$2 (whole log: $1)"
}

# ---------------------------------------------------------------------------------------------
say "The madoguchi wheel"
WORK=$(mktemp -d "$CACHE/work.XXXXXX")
ROOT=$WORK/root
mkdir -p "$WORK/in"
ORIGIN="given"
if [[ -z $WHEEL ]]; then
    log=$CACHE/logs/madoguchi-wheel-$STAMP.log
    # From a copy, so the build leaves nothing (build/, egg-info) in the checkout.
    mkdir "$WORK/src"
    tar -C "$REPO" --exclude=__pycache__ --exclude='*.egg-info' -cf - pyproject.toml README.md firmware | tar -C "$WORK/src" -xf -
    python3 -m pip wheel --no-deps -w "$WORK/in" "$WORK/src" >"$log" 2>&1 || fail "$log" "building the madoguchi wheel from $REPO failed"
    WHEEL=$(compgen -G "$WORK/in/madoguchi-*.whl" | head -1)
    [[ -n $WHEEL ]] || fail "$log" "pip wheel made no madoguchi-*.whl"
    ORIGIN="built here"
    say "    built ${WHEEL##*/} from $REPO"
else
    cp "$WHEEL" "$WORK/in/"
    say "    given: ${WHEEL##*/}"
fi
MWHEEL=${WHEEL##*/}

# ---------------------------------------------------------------------------------------------
# >>> chroot section: the build chroot. Any change between these markers (or to the suite)
# makes a new tarball key, so the chroot is re-created.
CHROOT_PACKAGES=(python3 python3-venv python3-dev gcc g++ libc6-dev pkg-config libicu-dev portaudio19-dev)
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
make_chroot() {  # make_chroot ROOT LOG: debootstrap, the sdists' build dependencies, a venv
    local root=$1 log=$2
    debootstrap --arch=arm64 --variant=minbase --foreign "$SUITE" "$root" "$mirror" 2>&1 | follow "$log" debootstrap \
        || fail "$log" "debootstrap (first stage) failed; if $mirror does not carry Debian $SUITE, set MADOGUCHI_DEBIAN_MIRROR=URL"
    install_interpreter "$root"
    chroot "$root" /debootstrap/debootstrap --second-stage 2>&1 | follow "$log" debootstrap \
        || fail "$log" "debootstrap (second stage, under qemu) failed"
    mount_chroot "$root"
    say "    installing ${CHROOT_PACKAGES[*]} (about 4 min under emulation)"
    chroot "$root" /usr/bin/env -i PATH="$CHROOT_PATH" DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
        sh -c "apt-get update && apt-get install -y --no-install-recommends ${CHROOT_PACKAGES[*]}" 2>&1 | follow "$log" apt \
        || fail "$log" "apt-get install in the chroot failed"
    say "    creating the build venv"
    chroot "$root" /usr/bin/env -i PATH="$CHROOT_PATH" LANG=C.UTF-8 python3 -m venv /build/venv >>"$log" 2>&1 \
        || fail "$log" "python3 -m venv in the chroot failed"
    chroot "$root" /usr/bin/env -i PATH="$CHROOT_PATH" apt-get clean >>"$log" 2>&1
    rm -rf "$root"/var/lib/apt/lists/* "$root"/tmp/* "$root"/root/.cache
    unmount_all
}
# <<< chroot section
CHROOT_KEY=$({ echo "$SUITE"; sed -n '/^# >>> chroot section/,/^# <<< chroot section/p' "$SELF"; } | sha256sum | cut -c1-16)
TARBALL=$CACHE/chroot-$SUITE-arm64-$CHROOT_KEY.tar.zst

install_interpreter() {  # only needed when binfmt lacks the F flag (the kernel then opens it in the chroot)
    ((QEMU_FIXED)) && return 0
    mkdir -p "$1$(dirname "$QEMU_INTERP")"
    cp -L "$QEMU" "$1$QEMU_INTERP"
}
mount_chroot() {
    local root=$1
    mount -t proc proc "$root/proc"
    mount --bind /sys "$root/sys"
    mount --bind /dev "$root/dev"
    mkdir -p "$root/dev/pts"
    mountpoint -q "$root/dev/pts" || mount --bind /dev/pts "$root/dev/pts"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
NEED_KB=$((1536 * 1024))
[[ -f $TARBALL ]] || NEED_KB=$((2048 * 1024))  # the chroot and its tarball
avail=$(df -Pk "$CACHE" | awk 'NR == 2 { print $4 }')
((avail >= NEED_KB)) || die "not enough space in $CACHE: $((avail / 1024)) MB free, the build chroot needs $((NEED_KB / 1024)) MB (free some, or give --cache DIR elsewhere)"

mkdir -p "$ROOT"
if [[ -f $TARBALL ]]; then
    t0=$SECONDS
    say "The build chroot: unpacking ${TARBALL##*/}"
    zstd -dcq "$TARBALL" | tar --numeric-owner -xpf - -C "$ROOT" || die "unpacking $TARBALL failed (delete it to re-create the chroot)"
    say "    unpacked in $(took "$t0")"
else
    t0=$SECONDS
    say "The build chroot: debootstrap arm64 minbase $SUITE (about 3 min), then its packages (about 4 min)"
    make_chroot "$ROOT" "$CACHE/logs/chroot-$SUITE-$STAMP.log"
    say "    chroot made in $(took "$t0"); saving it as ${TARBALL##*/}"
    t0=$SECONDS
    tar --numeric-owner -cpf - -C "$ROOT" . | zstd -q -T0 -3 -o "$TARBALL.tmp" || { rm -f "$TARBALL.tmp"; die "saving the chroot tarball failed"; }
    mv "$TARBALL.tmp" "$TARBALL"
    find "$CACHE" -maxdepth 1 -name "chroot-$SUITE-arm64-*.tar.zst" ! -name "${TARBALL##*/}" -delete
    say "    saved ($(du -h "$TARBALL" | cut -f1)) in $(took "$t0")"
fi
install_interpreter "$ROOT"
mount_chroot "$ROOT"
mkdir -p "$ROOT/build/wheels" "$ROOT/build/in" "$ROOT/build/out"
mount --bind "$WHEELS" "$ROOT/build/wheels"
cp "$WHEEL" "$ROOT/build/in/"

# pip in the chroot sees none of the host's PIP_* settings (env -i; e.g. a host PIP_FIND_LINKS
# breaks it) except the index settings, and trusts the host's CA bundle.
CHROOT_ENV=(HOME=/root PATH="$CHROOT_PATH" LANG=C.UTF-8 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1)
for var in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_DEFAULT_TIMEOUT http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [[ -z ${!var:-} ]] || CHROOT_ENV+=("$var=${!var}")
done
ca=${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-}}}
if [[ -n $ca ]]; then
    [[ -f $ca ]] || die "the CA bundle \$PIP_CERT (or \$REQUESTS_CA_BUNDLE, \$SSL_CERT_FILE) names is missing: $ca"
    cp -L "$ca" "$ROOT/build/ca.pem"
    CHROOT_ENV+=(PIP_CERT=/build/ca.pem)
fi
# A command killed by Ctrl-C (130) or TERM (143) stops the script: qemu-user reports the guest's
# death by signal as an exit status, which bash does not take for an interrupt.
in_chroot() {
    local rc=0
    chroot "$ROOT" /usr/bin/env -i "${CHROOT_ENV[@]}" "$@" || rc=$?
    if ((rc == 130 || rc == 143)); then echo "$PROG: interrupted" >&2; exit 130; fi
    return "$rc"
}
# pip turns Ctrl-C into "Operation cancelled" and exit 1, and bash runs its INT trap only when
# the child died of the SIGINT; so pip runs with SIGINT at its default action and dies of it.
cat >"$ROOT/build/run-pip.py" <<'EOF_PIP'
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
from pip._internal.cli.main import main
sys.exit(main())
EOF_PIP

# ---------------------------------------------------------------------------------------------
# The closure: first from the cache alone (offline); when it does not satisfy madoguchi (or
# --refresh), pip wheel against the index builds or downloads what is missing into the cache.
PIP=(/build/venv/bin/python /build/run-pip.py)
REPORT_LOG=$CACHE/logs/pip-report-$SUITE-$STAMP.log
resolve_offline() {
    rm -f "$ROOT/build/report.json"
    in_chroot "${PIP[@]}" install --dry-run --ignore-installed --quiet --report /build/report.json \
        --no-index --find-links /build/wheels "/build/in/$MWHEEL" >>"$REPORT_LOG" 2>&1
}
rm -f "$WHEELS"/madoguchi-*.whl  # never a stale madoguchi of the same version
t0=$SECONDS
if ((!REFRESH)) && say "Resolving madoguchi's dependencies from the cache (offline)" && resolve_offline; then
    say "    the cache satisfies ${MWHEEL} ($(took "$t0"))"
else
    ((REFRESH)) || say "    the cache does not satisfy it ($(took "$t0")); resolving against the package index"
    t0=$SECONDS
    log=$CACHE/logs/pip-wheel-$SUITE-$STAMP.log
    say "Building the wheelhouse in the chroot (pip wheel; an sdist is built once per version, PyICU about 11 min)"
    # --use-pep517: an sdist without pyproject.toml (unidic-lite) would otherwise need `wheel` in the venv.
    in_chroot "${PIP[@]}" wheel --use-pep517 --wheel-dir /build/wheels --find-links /build/wheels "/build/in/$MWHEEL" 2>&1 | follow "$log" pip \
        || fail "$log" "pip wheel in the $SUITE chroot failed"
    rm -f "$WHEELS"/madoguchi-*.whl
    say "    pip wheel done in $(took "$t0")"
    t0=$SECONDS
    resolve_offline || fail "$REPORT_LOG" "the wheels pip just made do not install madoguchi offline"
    say "    resolved from the cache in $(took "$t0")"
fi

# ---------------------------------------------------------------------------------------------
say "Checking the closure and copying it to $OUT"
mapfile -t closure < <(python3 "$HERE/wheels.py" closure "$ROOT/build/report.json")
((${#closure[@]})) || die "pip's report lists no wheels"
files=()
for f in "${closure[@]}"; do
    if [[ $f == "$MWHEEL" ]]; then
        files+=("$WHEEL")
    else
        [[ -f $WHEELS/$f ]] || die "pip resolved $f, which is not in $WHEELS"
        files+=("$WHEELS/$f")
    fi
done
python3 "$HERE/wheels.py" check --python "$PY" "${files[@]}" \
    || die "the wheels above cannot be installed by CPython 3.${PY#3} on aarch64; delete them from $WHEELS and run again"
find "$OUT" -mindepth 1 -maxdepth 1 \( -name '*.whl' -o -name wheels.tsv \) -delete
cp "${files[@]}" "$OUT/"
python3 "$HERE/wheels.py" tsv --built "$LEDGER" --origin "$MWHEEL=$ORIGIN" "$OUT"/*.whl >"$OUT/wheels.tsv.tmp"
mv "$OUT/wheels.tsv.tmp" "$OUT/wheels.tsv"
built=$(awk -F '\t' 'NR > 1 && $4 == "built here" && $1 !~ /^madoguchi-/ { sub(/-[0-9].*/, "", $1); printf "%s%s", sep, $1; sep = ", " }' "$OUT/wheels.tsv")
say "    ${#files[@]} wheels, $(du -shc "$OUT"/*.whl | tail -1 | cut -f1); built here from sdists: ${built:-none}"

# ---------------------------------------------------------------------------------------------
if ((CHECK)); then
    say "Checking: a fresh venv in the chroot, madoguchi installed offline from $OUT, the native modules imported"
    mount --bind "$OUT" "$ROOT/build/out"
    log=$CACHE/logs/check-$SUITE-$STAMP.log
    t0=$SECONDS
    in_chroot python3 -m venv /build/check >>"$log" 2>&1 || fail "$log" "python3 -m venv failed"
    say "    venv in $(took "$t0")"
    t0=$SECONDS
    in_chroot /build/check/bin/python /build/run-pip.py install --no-index --find-links /build/out madoguchi >>"$log" 2>&1 \
        || fail "$log" "pip install --no-index --find-links $OUT madoguchi failed"
    say "    pip install --no-index madoguchi in $(took "$t0")"
    # Each module in its own interpreter, so one crash names its module and the rest still run.
    t0=$SECONDS
    failed=() crashed=()
    for module in icu pyaudio spidev lgpio numpy ctranslate2 pywhispercpp onnxruntime sentencepiece soundfile soxr fugashi unidic_lite PIL madoguchi; do
        t1=$SECONDS
        if in_chroot /build/check/bin/python -c "import $module" >>"$log" 2>&1; then
            say "      import $module: ok ($(took "$t1"))"
        else
            rc=$?
            if ((rc > 128)); then
                say "      import $module: killed by signal $((rc - 128)) under qemu-user (not counted as a failure: check it on a Pi)"
                crashed+=("$module")
            else
                say "      import $module: failed (exit $rc)"
                failed+=("$module")
            fi
        fi
    done
    ((${#failed[@]} == 0)) || fail "$log" "importing ${failed[*]} failed in the chroot"
    say "    imports in $(took "$t0")${crashed[*]:+; crashed under emulation only: ${crashed[*]}}"
fi
say "Done: $OUT (wheels.tsv lists them) in $(took 0)"
