#!/usr/bin/env bash
# The demo's epoch report in a real browser, and its metrics file read by prometheus_client.
#
#   scripts/tests/report.sh [--save-screenshots DIR]
#
# Runs pipelines/demo.sh (which writes epoch-N/report.html) while Debian's chromium and a venv with
# prometheus_client and Pillow are installed (idempotently), then for the block-200 report:
#   - Chromium (headless) renders it in the light and the dark scheme; each screenshot must not be
#     blank and must show the scheme asked for;
#   - no network request from the page: Chromium runs with every request (loopback
#     included) sent to a proxy on 127.0.0.1 that records it and answers 403 (scripts/tests/lib/
#     netguard.py), and a net log. The net log tells the page's requests (initiator: the page's origin)
#     from the browser's own (component updater, sign-in: initiator "not an origin"); the page must have
#     none, and every connection the proxy saw must be in the net log (so it is complete). A control
#     page with one external image must be caught, so the check can fail;
#   - the per-prompt table's orderings work without script: #by-id and #by-diff-2 show different tables;
#   - the page carries a CSP that forbids fetching; each epoch's page is well-formed XML (Python's parser);
# and the metrics the demo's epoch wrote are parsed by prometheus_client's parser.
# --save-screenshots DIR copies the screenshots there (docs/report-light.png, docs/report-dark.png).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
save=""
[[ "${1:-}" == --save-screenshots ]] && save=$2

tmp=$(mktemp -d)
pids=()
demo_pid=""
cleanup() {
  # The demo runs in its own session: killing its group also stops the epoch.sh and dl-* it started
  # (killing demo.sh's bash alone would leave them running into a removed folder).
  [[ -z "$demo_pid" ]] || kill -- -"$demo_pid" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "report: FAIL: $*" >&2; exit 1; }

bin="${DISTIL_BIN:-$(swift build --show-bin-path)}"
[[ -x "$bin/dl-judge" ]] || fail "$bin/dl-judge is missing: run scripts/setup.sh"

# The demo, in the background while the browser and the venv are installed.
work="$tmp/demo"
DISTIL_BIN="$bin" setsid pipelines/demo.sh "$work" --metrics "$tmp/distil.prom" > "$tmp/demo.out" 2> "$tmp/demo.err" &
demo_pid=$!
pids+=("$demo_pid")

sudo=""
[[ "$(id -u)" == 0 ]] || sudo="sudo"
missing=()
command -v chromium >/dev/null || missing+=(chromium)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
  echo "report: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
venv="${XDG_CACHE_HOME:-$HOME/.cache}/distil/venv-report"
if ! "$venv/bin/python" -c 'import prometheus_client, PIL' 2>/dev/null; then
  echo "report: making the venv $venv (prometheus_client, Pillow)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "prometheus_client==0.21.1" "pillow==11.1.0" >&2
fi
py="$venv/bin/python"

if ! wait "$demo_pid"; then cat "$tmp/demo.err" >&2; fail "pipelines/demo.sh failed"; fi
page="$work/epoch-200/report.html"
[[ -s "$page" ]] || fail "the demo wrote no $page"
grep -q "$page" "$tmp/demo.err" || fail "the demo does not say where the report is"
for b in 120 260; do [[ -s "$work/epoch-$b/report.html" ]] || fail "no report for the block-$b epoch"; done
grep -q "http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'" "$page" || fail "no CSP forbidding fetches in $page"
for b in 120 200 260; do
  python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$work/epoch-$b/report.html" \
    || fail "$work/epoch-$b/report.html is not well-formed XML"
done
echo "report: the demo wrote $page ($(wc -c < "$page") bytes) and the other epochs' reports" >&2

# The recording proxy.
"$py" scripts/tests/lib/netguard.py "$tmp/port" "$tmp/connections.log" &
pids+=($!)
for _ in $(seq 50); do [[ -s "$tmp/port" ]] && break; sleep 0.1; done
port=$(cat "$tmp/port")
touch "$tmp/connections.log"

# shot NAME PAGE SCHEME [HEIGHT]: a headless screenshot with every request sent to the proxy, and a net log.
shot() {
  local name=$1 url=$2 scheme=$3 height=${4:-1800} dark=()
  [[ "$scheme" == dark ]] && dark=(--force-dark-mode --blink-settings=preferredColorScheme=0)
  : > "$tmp/connections.log"
  timeout 90 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --disable-default-apps \
    --disable-extensions --disable-features=Translate,OptimizationHints,MediaRouter,NetworkTimeServiceQuerying \
    --user-data-dir="$tmp/profile-$name" --proxy-server="http://127.0.0.1:$port" --proxy-bypass-list='<-loopback>' \
    --log-net-log="$tmp/$name.netlog.json" --net-log-capture-mode=Everything \
    --window-size=960,"$height" "${dark[@]}" --screenshot="$tmp/$name.png" "$url" > "$tmp/$name.chromium.log" 2>&1 \
    || { cat "$tmp/$name.chromium.log" >&2; fail "chromium failed on $url"; }
  [[ -s "$tmp/$name.png" ]] || fail "chromium wrote no screenshot of $url"
  cp "$tmp/connections.log" "$tmp/$name.connections.log"
}

# The control: a page that does fetch must be caught by the proxy and the net log.
cat > "$tmp/control.html" <<'HTML'
<!DOCTYPE html><html><body><p>control</p><img src="http://distil-netguard-control.invalid/x.png"/></body></html>
HTML
shot control "file://$tmp/control.html" light
grep -q "distil-netguard-control.invalid" "$tmp/control.connections.log" || fail "the control page's request did not reach the proxy"
"$py" scripts/tests/lib/report_checks.py netlog "$tmp/control.netlog.json" "$tmp/control.connections.log" distil-netguard-control.invalid >&2 \
  || fail "the net log check did not see the control page's request"
echo "report: control page: its request reached the proxy and the net log attributes it to the page" >&2

shot light "file://$page" light
shot dark "file://$page" dark
# Orderings: in a window taller than the page (nothing to scroll to), #by-id and #by-diff-2 must show
# different tables: with :target broken both would show the same (every table, or the default alone).
shot by-id "file://$page#by-id" light 9000
shot by-diff "file://$page#by-diff-2" light 9000
for s in light dark by-id by-diff; do
  "$py" scripts/tests/lib/report_checks.py netlog "$tmp/$s.netlog.json" "$tmp/$s.connections.log" >&2 || fail "the report made network requests ($s)"
done
for s in light dark; do
  "$py" scripts/tests/lib/report_checks.py screenshot "$tmp/$s.png" "$s" >&2 || fail "the $s screenshot"
done
cmp -s "$tmp/by-id.png" "$tmp/by-diff.png" && fail "#by-id and #by-diff-2 show the same page: the orderings do not work"
echo "report: no request from the report; #by-diff-2 renders another ordering (the page has no script, and its CSP allows none)" >&2

# Printable: Chromium's own print to PDF works on the page.
timeout 90 chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --user-data-dir="$tmp/profile-pdf" --proxy-server="http://127.0.0.1:$port" --proxy-bypass-list='<-loopback>' \
  --no-pdf-header-footer --print-to-pdf="$tmp/report.pdf" "file://$page" > "$tmp/pdf.log" 2>&1 || { cat "$tmp/pdf.log" >&2; fail "print to PDF"; }
head -c 5 "$tmp/report.pdf" | grep -q '%PDF-' || fail "print to PDF wrote no PDF"
echo "report: printed to PDF ($(wc -c < "$tmp/report.pdf") bytes)" >&2

# The metrics file the demo's epochs wrote (pipelines/epoch.sh --metrics).
# The file holds the last epoch's (block 260: no compute); the block-200 epoch's, which ran the teacher,
# is written again from its folder.
[[ -s "$tmp/distil.prom" ]] || fail "the demo wrote no metrics file"
"$py" scripts/tests/lib/report_checks.py metrics "$tmp/distil.prom" >&2 || fail "the metrics file"
grep -q '^distil_epoch_block 260$' "$tmp/distil.prom" || fail "the metrics are not the last epoch's"
grep -q '^distil_epoch_runs_total{result="success"} 3$' "$tmp/distil.prom" || fail "three successful epochs not counted: $(grep runs_total "$tmp/distil.prom")"
"$bin/dl-judge" metrics --epoch "$work/epoch-200" --exit-status 0 --out "$tmp/epoch-200.prom"
"$py" scripts/tests/lib/report_checks.py metrics "$tmp/epoch-200.prom" --compute >&2 || fail "the block-200 epoch's metrics"
grep -q '^distil_epoch_stage_duration_seconds{stage="teacher"} ' "$tmp/epoch-200.prom" || fail "no teacher stage seconds"

if [[ -n "$save" ]]; then
  cp "$tmp/light.png" "$save/report-light.png"; cp "$tmp/dark.png" "$save/report-dark.png"
  echo "report: screenshots saved in $save" >&2
fi
echo "report: all checks passed"
