#!/usr/bin/env bash
# Run `trust-console demo` in a detached tmux pane, drive it with keys and check what the pane shows.
#
# Usage: scripts/tmux_demo_check.sh [TRUST_CONSOLE_BINARY]
# The demo's hub listens on 127.0.0.1 only. The script uses a tmux server of its own (-L), kills it on
# exit, and gives up after CHECK_TIMEOUT_SECONDS (default 60) in all. Exit status 0 means every check passed.
set -euo pipefail

binary="${1:-$(dirname "$0")/../.venv/bin/trust-console}"
socket="trust-console-check-$$"
session="demo"
deadline=$((SECONDS + ${CHECK_TIMEOUT_SECONDS:-60}))
state_file="$(mktemp)"

cleanup() {
    tmux -L "$socket" kill-server 2>/dev/null || true
    rm -f "$state_file"
}
trap cleanup EXIT

capture() {
    tmux -L "$socket" capture-pane -p -t "$session" 2>/dev/null || true
}

# Wait until the pane shows TEXT, for at most WAIT seconds and never past the overall deadline.
expect() {
    local text="$1" wait="${2:-15}"
    local until=$((SECONDS + wait))
    while ((SECONDS < until && SECONDS < deadline)); do
        if capture | grep -qF -- "$text"; then
            echo "ok: pane shows '$text'"
            return 0
        fi
        sleep 0.2
    done
    echo "FAILED: the pane never showed '$text'; it shows:" >&2
    capture >&2
    exit 1
}

keys() {
    tmux -L "$socket" send-keys -t "$session" "$@"
    sleep 0.3
}

tmux -L "$socket" new-session -d -s "$session" -x 140 -y 40 \
    "TRUST_CONSOLE_KEYMAP= '$binary' demo; echo \"exit status \$?\" > '$state_file'; sleep 5"

expect "ONLINE" 20
expect "Demo Trust" 5
keys "?"
expect "trust-console keys"
keys Escape
keys "/"
keys -l "sleep"
expect "filter 'sleep'"
keys Enter Escape
keys "p"
expect "PAUSED"
keys "p"
keys "c"
expect "Heartbeat round trip"
keys Escape
keys "2"
expect "Tasks · running"
keys "0" Enter
expect "Task details"
keys Escape
keys "q"
expect "Quit trust-console?"
keys "y"

until [[ -s "$state_file" ]] || ((SECONDS >= deadline)); do
    sleep 0.2
done
status="$(cat "$state_file" 2>/dev/null || true)"
if [[ "$status" != "exit status 0" ]]; then
    echo "FAILED: the console did not quit cleanly (${status:-still running}); the pane shows:" >&2
    capture >&2
    exit 1
fi
echo "ok: the console quit with exit status 0"
