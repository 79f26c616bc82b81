#!/bin/bash
# kiosk-setup/install.sh: a bare Debian 12 / Raspberry Pi OS (bookworm) box to a store
# kiosk (or a back-office store server) in one command. See kiosk-setup/README.md.
#
#   sudo ./kiosk-setup/install.sh --role kiosk|store-server --hub-url URL \
#        --store-id ID --store-secret-file F [--screen portrait|landscape] \
#        [--hours 08:00-21:00] [--port 8000] [--root DIR] [--uninstall [--purge]]
#
# --root DIR: dry run, renders every file it would write into DIR (mirroring absolute
# paths) and touches nothing else. Without it (as root): installs, idempotently.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(dirname "$here")"

usage() {
    sed -n '4,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

die_usage() {
    echo "install.sh: $*" >&2
    usage
    exit 2
}

role="" hub_url="" store_id="" secret_file="" screen="landscape" hours="08:00-21:00"
port="8000" root="" uninstall=0 purge=0

need_value() {
    [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die_usage "$1 needs a value"
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --role) need_value "$@"; role="$2"; shift 2 ;;
        --hub-url) need_value "$@"; hub_url="$2"; shift 2 ;;
        --store-id) need_value "$@"; store_id="$2"; shift 2 ;;
        --store-secret-file) need_value "$@"; secret_file="$2"; shift 2 ;;
        --screen) need_value "$@"; screen="$2"; shift 2 ;;
        --hours) need_value "$@"; hours="$2"; shift 2 ;;
        --port) need_value "$@"; port="$2"; shift 2 ;;
        --root) need_value "$@"; root="$2"; shift 2 ;;
        --uninstall) uninstall=1; shift ;;
        --purge) purge=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown argument: $1" ;;
    esac
done

if [[ "$purge" == 1 && "$uninstall" == 0 ]]; then
    die_usage "--purge goes with --uninstall"
fi

if [[ "$uninstall" == 0 ]]; then
    case "$role" in
        kiosk | store-server) ;;
        "") die_usage "--role is required (kiosk or store-server)" ;;
        *) die_usage "--role must be kiosk or store-server, not '$role'" ;;
    esac
    [[ -n "$hub_url" ]] || die_usage "--hub-url is required"
    [[ "$hub_url" =~ ^https?://[^[:space:]]+$ ]] ||
        die_usage "--hub-url must be an http:// or https:// URL, not '$hub_url'"
    [[ -n "$store_id" ]] || die_usage "--store-id is required"
    [[ "$store_id" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] ||
        die_usage "--store-id: letters, digits, '.', '_', '-' only, not '$store_id'"
    [[ -n "$secret_file" ]] || die_usage "--store-secret-file is required"
    [[ -f "$secret_file" && -r "$secret_file" ]] ||
        die_usage "--store-secret-file: cannot read '$secret_file'"
    secret="$(tr -d '[:space:]' <"$secret_file")"
    [[ "$secret" =~ ^([0-9a-fA-F]{2})+$ ]] ||
        die_usage "--store-secret-file: '$secret_file' must hold the hex secret from 'kiosk hub add-store'"
    case "$screen" in
        portrait | landscape) ;;
        *) die_usage "--screen must be portrait or landscape, not '$screen'" ;;
    esac
    [[ "$hours" =~ ^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$ ]] ||
        die_usage "--hours must be HH:MM-HH:MM (e.g. 08:00-21:00), not '$hours'"
    if ! [[ "$port" =~ ^[0-9]{1,5}$ ]] || ((port < 1 || port > 65535)); then
        die_usage "--port must be a number 1-65535, not '$port'"
    fi
fi

render() { # render DIR: every file, through the one renderer
    python3 "$here/render.py" --root "$1" --role "$role" --hub-url "$hub_url" \
        --store-id "$store_id" --screen "$screen" --hours "$hours" --port "$port"
}

if [[ -n "$root" ]]; then
    if [[ "$uninstall" == 1 ]]; then
        die_usage "--uninstall and --root do not go together (nothing to remove in a dry run)"
    fi
    mkdir -p "$root"
    render "$root" >/dev/null
    echo "Rendered into $root (nothing else touched):"
    (cd "$root" && find . -type f | sort | sed 's#^\.#  #')
    exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
    echo "install.sh: run as root (sudo), or use --root DIR for a dry run" >&2
    exit 1
fi

log() { echo "kiosk-setup: $*"; }
changed=0
restart_server=0

# Every file install.sh manages is listed here (for --uninstall).
manifest=/etc/kiosk/installed-files
units=(kiosk-server.service kiosk-backup.timer kiosk-screen.service
    kiosk-screen-on.timer kiosk-screen-off.timer kiosk-browser-restart.timer
    kiosk-screen-watch.timer)

if [[ "$uninstall" == 1 ]]; then
    for unit in "${units[@]}"; do
        systemctl disable --now "$unit" 2>/dev/null || true
    done
    if [[ -f "$manifest" ]]; then
        while IFS= read -r path; do
            [[ "$path" == /* ]] && rm -f -- "$path"
        done <"$manifest"
    fi
    rm -rf /opt/kiosk
    rm -f /etc/kiosk/kiosk.toml /etc/kiosk/store-secret "$manifest"
    rmdir /etc/kiosk 2>/dev/null || true
    systemctl enable getty@tty1.service 2>/dev/null || true
    systemctl daemon-reload
    udevadm control --reload 2>/dev/null || true
    if [[ "$purge" == 1 ]]; then
        rm -rf /var/lib/kiosk
        userdel kiosk 2>/dev/null || true
        userdel kiosk-screen 2>/dev/null || true
        log "removed, data in /var/lib/kiosk too (--purge)"
    else
        log "removed; the store's data stays in /var/lib/kiosk (--purge removes it)"
    fi
    exit 0
fi

# --- Debian packages -----------------------------------------------------------------
packages=(python3 python3-venv ca-certificates curl systemd-timesyncd unattended-upgrades sqlite3)
if [[ "$role" == kiosk ]]; then
    packages+=(cage chromium wlr-randr fonts-dejavu-core)
fi
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    changed=1
fi

# --- Users and directories -------------------------------------------------------------
if ! id -u kiosk >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/kiosk --no-create-home --shell /usr/sbin/nologin kiosk
    changed=1
fi
if [[ "$role" == kiosk ]] && ! id -u kiosk-screen >/dev/null 2>&1; then
    useradd --system --home-dir /run/kiosk-screen --no-create-home \
        --shell /usr/sbin/nologin --groups video,input,render kiosk-screen
    changed=1
fi
install -d -o kiosk -g kiosk -m 0750 /var/lib/kiosk
install -d -o root -g root -m 0755 /etc/kiosk /opt/kiosk

# The store secret: root-owned 0600, handed to the server by systemd (LoadCredential=).
if ! cmp -s <(printf '%s\n' "$secret") /etc/kiosk/store-secret 2>/dev/null; then
    (umask 077 && printf '%s\n' "$secret" >/etc/kiosk/store-secret.new)
    mv -f /etc/kiosk/store-secret.new /etc/kiosk/store-secret
    changed=1
    restart_server=1
fi
chown root:root /etc/kiosk/store-secret
chmod 0600 /etc/kiosk/store-secret

# --- The project, in /opt/kiosk/venv -------------------------------------------------------
src_hash="$(cd "$project" && find app templates static pyproject.toml -type f -print0 2>/dev/null |
    sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [[ ! -x /opt/kiosk/venv/bin/kiosk || "$(cat /opt/kiosk/.source-hash 2>/dev/null)" != "$src_hash" ]]; then
    log "installing the project into /opt/kiosk/venv"
    [[ -d /opt/kiosk/venv ]] || python3 -m venv /opt/kiosk/venv
    /opt/kiosk/venv/bin/pip install --quiet --upgrade "$project"
    echo "$src_hash" >/opt/kiosk/.source-hash
    changed=1
    restart_server=1
fi
install -d -o root -g root -m 0755 /opt/kiosk/bin
# `sudo /opt/kiosk/bin/kiosk --config /etc/kiosk/kiosk.toml doctor` (README).
if [[ "$(readlink /opt/kiosk/bin/kiosk 2>/dev/null)" != /opt/kiosk/venv/bin/kiosk ]]; then
    ln -sfn /opt/kiosk/venv/bin/kiosk /opt/kiosk/bin/kiosk
    changed=1
fi

# --- The rendered files: written only where they differ ------------------------------------
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
render "$staging/root" >"$staging/list"
units_changed=0
while IFS= read -r path; do
    if ! cmp -s "$staging/root$path" "$path"; then
        mode="$(stat -c %a "$staging/root$path")"
        install -D -o root -g root -m "$mode" "$staging/root$path" "$path"
        log "wrote $path"
        changed=1
        case "$path" in /etc/systemd/* | /opt/kiosk/bin/kiosk-server | /etc/kiosk/*) units_changed=1 ;; esac
        case "$path" in /etc/udev/*) udevadm control --reload && udevadm trigger --subsystem-match=input ;; esac
    fi
done <"$staging/list"
if ! cmp -s "$staging/list" "$manifest"; then
    install -m 0644 "$staging/list" "$manifest"
fi

if [[ "$units_changed" == 1 ]]; then
    systemctl daemon-reload
    systemctl try-restart systemd-timesyncd.service systemd-journald.service || true
fi

enable() {
    if ! systemctl is-enabled --quiet "$1" 2>/dev/null; then
        systemctl enable "$1"
        changed=1
    fi
    if ! systemctl is-active --quiet "$1"; then
        systemctl start "$1"
        changed=1
    fi
}
enable systemd-timesyncd.service
timedatectl set-ntp true
enable kiosk-server.service
enable kiosk-backup.timer
if [[ "$role" == kiosk ]]; then
    if systemctl is-enabled --quiet getty@tty1.service 2>/dev/null; then
        systemctl disable getty@tty1.service
        changed=1
    fi
    if [[ "$(systemctl get-default)" != graphical.target ]]; then
        systemctl set-default graphical.target
        changed=1
    fi
    enable kiosk-screen.service
    enable kiosk-screen-on.timer
    enable kiosk-screen-off.timer
    enable kiosk-browser-restart.timer
    enable kiosk-screen-watch.timer
fi
if [[ "$units_changed" == 1 || "$restart_server" == 1 ]]; then
    systemctl restart kiosk-server.service
fi

if [[ "$changed" == 0 ]]; then
    log "nothing to change: already installed as $role"
else
    log "installed as $role"
fi
