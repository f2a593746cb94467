#!/usr/bin/env bash
# One validator epoch, commitments in, verdict out, over a working directory of cached artifacts.
#
#   pipelines/epoch.sh --work DIR --commitments FILE --teacher DIR --block N --block-hash HEX CORPUS...
#   pipelines/epoch.sh --stage NAME[,NAME...] [--task I] (the same options)    some stages only
#
# Every stage writes one artifact in DIR/epoch-N/, named by what produced it, and appears only when
# complete (written to NAME.part, renamed). A stage whose artifact exists is skipped, so a crashed or
# killed epoch resumes where it stopped, and a past epoch can be re-scored from its artifacts
# (pipelines/reproduce.sh). A lock on DIR/.lock keeps two runs (cron) from overlapping. The stages are
# written once, in pipelines/lib/epoch-stages.sh; pipelines/slurm/ and pipelines/parallel/ run the same
# stages spread over machines (the students at the same time), with the same artifacts.
#
#   DIR/state.json              the judge's state across epochs (king, every model's score)
#   DIR/registry.json           dl-check's owners of weight identities and hotkeys across epochs
#   DIR/epoch-N/manifests.jsonl dl-fetch      what was fetched (files, SHA-256)
#   DIR/epoch-N/checks.jsonl    dl-check      one verdict per model; only ok ones go on
#   DIR/epoch-N/plan.jsonl      dl-judge plan the king + new challengers (empty: no compute this epoch)
#   DIR/epoch-N/prompts.jsonl   dl-prompts    prompts drawn from the corpus by the block hash
#   DIR/epoch-N/teacher.dlt     dl-teacher    continuations + full-vocabulary teacher rows
#   DIR/epoch-N/kl/UID.jsonl    dl-kl         per-prompt KL of each scored model, or its scoring-failure record
#                                             (a model that cannot be scored; kl/UID.done: its summary)
#   DIR/epoch-N/kl.done                       every scored model's summary: all students finished
#   DIR/epoch-N/recheck.jsonl   dl-check --recheck-only   the scored models asked again, just before the
#                                             judge, whether each is still public at its commit with the same
#                                             files (a local directory is re-hashed): OK, REMOVED, CHANGED, RETRY
#   DIR/epoch-N/state-before.json             the state this epoch was judged against
#   DIR/epoch-N/verdict.json    dl-judge      the verdict: winner and weights per uid
#   DIR/epoch-N/timings.jsonl                 one line per stage run: wall seconds, cached, exit status
#   DIR/epoch-N/report.html     dl-judge report   the epoch as one self-contained HTML page (with the judge)
#
# --metrics FILE: at exit, success or not, the epoch's figures go to FILE (dl-judge metrics: Prometheus
# text, written atomically, for node_exporter's textfile collector; docs/FORMATS.md "Metrics").
#
# Stages (--stage, in this order whatever order they are named in): fetch, check, plan, prompts,
# teacher, kl, recheck, judge; "prepare" is fetch,check,plan,prompts and "finish" is recheck,judge.
# `--stage kl --task I` scores only the I-th model of plan.jsonl (a Slurm array task; it takes no lock:
# it writes only that model's files). The verdict is printed when the judge stage runs.
#
# DIR/state.json follows the newest judged epoch: re-running an older epoch leaves it as it is.
#
# Exit status: 0 done; 1 a stage failed (one line says which; the next run resumes the epoch; a full
# disk or a model too large for this machine's memory is this too, with nothing half-written); 2 usage;
# 3 another run holds DIR/.lock (this one started nothing: it refuses at once rather than wait).
# docs/RELIABILITY.md: what a kill at any moment, a full disk, a memory limit and two runs do.
set -euo pipefail
EPOCH_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$EPOCH_ROOT/pipelines/lib/epoch-stages.sh"

usage() {
  epoch_header_help "$0"
  epoch_options_help
  cat <<'USAGE'
  --stage NAME[,NAME...]   run only these stages (default: all)
  --task I                 with --stage kl: only the I-th planned model (1-based)
  --metrics FILE           write the epoch's Prometheus metrics to FILE at exit (e.g. .../textfile/distil.prom)
USAGE
}

all_stages=(fetch check plan prompts teacher kl recheck judge)
stages="" task="" metrics=""
epoch_driver_option() {
  case "$1" in
    --stage) stages=$2 ;;
    --task) task=$2 ;;
    --metrics) metrics=$2 ;;
    *) return 1 ;;
  esac
}
for a in "$@"; do [[ "$a" == -h || "$a" == --help ]] && { usage; exit 0; }; done
epoch_parse "$@"

declare -A want=()
if [[ -z "$stages" ]]; then
  for s in "${all_stages[@]}"; do want[$s]=1; done
else
  IFS=, read -ra named <<< "$stages"
  for s in "${named[@]}"; do
    case "$s" in
      prepare) want[fetch]=1 want[check]=1 want[plan]=1 want[prompts]=1 ;;
      finish) want[recheck]=1 want[judge]=1 ;;
      fetch|check|plan|prompts|teacher|kl|recheck|judge) want[$s]=1 ;;
      *) epoch_usage_error "unknown stage '$s' (stages: ${all_stages[*]}, prepare, finish)" ;;
    esac
  done
fi
[[ -z "$task" || ( -n "${want[kl]:-}" && ${#want[@]} == 1 ) ]] || epoch_usage_error "--task goes with --stage kl alone"
if [[ -n "${want[prompts]:-}" ]]; then epoch_validate; else epoch_validate --no-corpus; fi

if [[ -n "$task" ]]; then epoch_begin --task; else epoch_lock; epoch_begin; fi
if [[ -n "$metrics" ]]; then
  if [[ -n "$task" ]]; then epoch_metrics_at_exit "$metrics" --keep-parts; else epoch_metrics_at_exit "$metrics"; fi
fi
for s in "${all_stages[@]}"; do
  [[ -n "${want[$s]:-}" ]] || continue
  case "$s" in
    kl) if [[ -n "$task" ]]; then stage_kl_task "$task"; else stage_kl_all; fi ;;
    *) "stage_$s" ;;
  esac
  if [[ "$s" == plan ]] && ! (($(epoch_planned))); then
    epoch_log "no new challenger: no teacher or student compute this epoch"
  fi
done
if [[ -n "${want[judge]:-}" ]]; then cat "$e/verdict.json"; fi
