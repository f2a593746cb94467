"""Checks of scripts/tests/report.sh that need Python libraries (run in the suite's venv).

  report_checks.py screenshot PNG light|dark     not blank, and the colour scheme asked for
  report_checks.py netlog NETLOG PROXYLOG [HOST] the page made no request (or one to HOST), every proxied
                                                 connection accounted for in Chromium's net log
  report_checks.py metrics FILE.prom [--compute] parsed by prometheus_client, names by Prometheus' conventions
"""
import json
import sys


def screenshot(path: str, scheme: str) -> None:
    from PIL import Image

    img = Image.open(path).convert("RGB")
    w, h = img.size
    small = img.resize((w // 4, h // 4))
    pixels = list(small.getdata())
    counts = {}
    for p in pixels:
        counts[p] = counts.get(p, 0) + 1
    bg, n_bg = max(counts.items(), key=lambda kv: kv[1])
    ink = 1 - n_bg / len(pixels)
    lum = (0.2126 * bg[0] + 0.7152 * bg[1] + 0.0722 * bg[2])
    print(f"{path}: {w}x{h}, {len(counts)} colours, background {bg} (luminance {lum:.0f}), {ink:.1%} of the page drawn")
    assert len(counts) >= 50, "blank: fewer than 50 colours"
    assert ink >= 0.03, "blank: less than 3% of the page differs from the background"
    if scheme == "dark":
        assert lum < 60, "the dark scheme did not apply"
    else:
        assert lum > 200, "the light scheme did not apply"


def netlog(path: str, proxy_log: str, expect_host: str = "") -> None:
    """The page's own requests, told from the browser's by Chromium's net log: a request the page makes
    carries the page's initiator (a file:// page's is the opaque origin "null") and a network isolation
    key of file://; the browser's own (component updater, sign-in, network time, ...) have the initiator
    "not an origin". Every connection the proxy saw must be one of these requests, so the net log is
    known to be complete."""
    from urllib.parse import urlsplit

    text = open(path).read().rstrip()
    # Chromium may stop before closing the JSON; the events array is complete up to its last record.
    if not text.endswith("}"):
        text = text.rstrip().rstrip(",") + "]}"
    log = json.loads(text)
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    page, browser = [], []
    for e in log.get("events", []):
        if names.get(e["type"]) != "URL_REQUEST_START_JOB":
            continue
        p = e.get("params") or {}
        url = p.get("url", "")
        if not url or url.startswith(("file:", "data:", "about:", "chrome:", "chrome-extension:")):
            continue
        own = p.get("initiator") == "not an origin" and "file://" not in p.get("network_isolation_key", "")
        (browser if own else page).append(url)
    hosts = {urlsplit(u).hostname for u in page + browser}
    proxied = set()
    for line in open(proxy_log, errors="replace"):
        parts = line.split()
        if len(parts) >= 2:
            target = parts[1]
            proxied.add(target.rsplit(":", 1)[0] if parts[0] == "CONNECT" else urlsplit(target).hostname)
    print(f"{path}: page requests {sorted(page)}; the browser's own requests went to {sorted({urlsplit(u).hostname for u in browser})}; "
          f"the proxy saw {sorted(proxied)}")
    unexplained = proxied - hosts
    assert not unexplained, f"the proxy saw connections the net log does not show: {sorted(unexplained)}"
    if expect_host:
        assert any(urlsplit(u).hostname == expect_host for u in page), f"the page's request to {expect_host} was not seen"
    else:
        assert not page, f"the page made network requests: {page}"


def metrics(path: str, compute: bool) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    text = open(path).read()
    families = list(text_string_to_metric_families(text))
    names = []
    for f in families:
        for s in f.samples:
            names.append(s.name)
            assert s.name.startswith("distil_"), s.name
            if f.type == "counter":
                assert s.name.endswith("_total"), f"counter {s.name} must end in _total"
            else:
                assert not s.name.endswith("_total"), f"{f.type} {s.name} must not end in _total"
        assert f.type in ("gauge", "counter"), (f.name, f.type)
        assert f.documentation, f"{f.name} has no HELP"
    needed = ["distil_epoch_block", "distil_epoch_success", "distil_epoch_stage_duration_seconds",
              "distil_epoch_models_fetched", "distil_epoch_models_scored", "distil_king_uid",
              "distil_king_mean_kl_nats", "distil_epoch_fetched_bytes", "distil_epoch_runs_total"]
    if compute:  # an epoch that ran the teacher
        needed += ["distil_teacher_tokens", "distil_teacher_tokens_per_second"]
    for needed in needed:
        assert needed in names, f"{needed} missing"
    print(f"{path}: prometheus_client read {len(families)} families, {len(names)} samples")


if __name__ == "__main__":
    what = sys.argv[1]
    try:
        {"screenshot": lambda: screenshot(sys.argv[2], sys.argv[3]), "netlog": lambda: netlog(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else ""),
         "metrics": lambda: metrics(sys.argv[2], sys.argv[3:] == ["--compute"])}[what]()
    except AssertionError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
