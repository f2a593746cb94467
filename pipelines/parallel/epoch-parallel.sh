#!/usr/bin/env bash
# One validator epoch with the students run at the same time by GNU parallel, on one many-core box
# (--jobs) or on hosts reached by ssh (--sshloginfile), for operators without Slurm. The stages are
# pipelines/epoch.sh's (pipelines/lib/epoch-stages.sh), with the same work folder, artifacts and
# cached-artifact rule; the verdict is the same bytes.
#
#   pipelines/parallel/epoch-parallel.sh [--jobs N] [--student-threads N] [--sshloginfile FILE] \
#       --work DIR --commitments FILE --teacher DIR --block N --block-hash HEX CORPUS...
#
# Here (hold the lock on DIR/.lock throughout): fetch, check, plan, prompts, the teacher. Then one
# `epoch.sh --stage kl --task I` per planned model under GNU parallel (a failed one runs once more:
# --retries 2; a model that cannot be scored is a finished task, docs/FORMATS.md "Scoring failure"), then the re-check and the judge — only when every student succeeded; otherwise the epoch
# fails and no verdict.json (no weights) appears. With --sshloginfile the repository, the tools (--bin)
# and DIR must be at the same paths on every host (a shared filesystem); the teacher runs on this box.
# The job log is DIR/epoch-N/parallel.joblog. Prints the verdict.
set -euo pipefail
EPOCH_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
source "$EPOCH_ROOT/pipelines/lib/epoch-stages.sh"

usage() {
  epoch_header_help "$0"
  cat <<'USAGE'
GNU parallel options:
  --jobs N                 students at the same time per host (default: 1 with --sshloginfile, else
                           cores / --student-threads, at most the planned models)
  --student-threads N      dl-kl --threads of each student (default: all cores / --jobs on this box;
                           with --sshloginfile, each host's cores / --jobs)
  --sshloginfile FILE      the hosts (GNU parallel's format: [N/]user@host per line, ':' for this box)
  --metrics FILE           the epoch's Prometheus metrics into FILE at exit, as pipelines/epoch.sh does
USAGE
  epoch_options_help
}

jobs="" student_threads="" sshloginfile="" metrics=""
epoch_driver_option() {
  case "$1" in
    --metrics) metrics=$2 ;;
    --jobs) jobs=$2 ;;
    --student-threads) student_threads=$2 ;;
    --sshloginfile) sshloginfile=$2 ;;
    *) return 1 ;;
  esac
}
for a in "$@"; do [[ "$a" == -h || "$a" == --help ]] && { usage; exit 0; }; done
epoch_parse "$@"
epoch_validate
command -v parallel >/dev/null || epoch_fail "GNU parallel is not on PATH (Debian: apt-get install parallel)"
for v in jobs student_threads; do
  [[ -z "${!v}" || "${!v}" =~ ^[1-9][0-9]*$ ]] || epoch_usage_error "--${v//_/-} must be a positive number, got '${!v}'"
done
[[ -z "$sshloginfile" || -f "$sshloginfile" ]] || epoch_fail "$sshloginfile: no such file"
epoch_absolute
epoch_args

epoch_lock
epoch_begin
[[ -z "$metrics" ]] || epoch_metrics_at_exit "$metrics"
stage_fetch
stage_check
stage_plan
n=$(epoch_planned)
if ((n)); then
  stage_prompts
  stage_teacher
  where=()
  if [[ -n "$sshloginfile" ]]; then
    where=(--sshloginfile "$sshloginfile" --jobs "${jobs:-1}")
    [[ -n "$student_threads" ]] && epoch_argv+=(--threads "$student_threads")
  else
    cores=$(nproc)
    if [[ -z "$jobs" ]]; then jobs=$((cores / ${student_threads:-1})); ((jobs <= n)) || jobs=$n; ((jobs >= 1)) || jobs=1; fi
    [[ -n "$student_threads" ]] || { student_threads=$((cores / jobs)); ((student_threads >= 1)) || student_threads=1; }
    where=(--jobs "$jobs")
    epoch_argv+=(--threads "$student_threads")
  fi
  epoch_log "kl: $n student(s) under GNU parallel (${where[*]})"
  rc=0
  seq 1 "$n" | parallel --will-cite -q "${where[@]}" --retries 2 --joblog "$e/parallel.joblog" \
    "$EPOCH_ROOT/pipelines/epoch.sh" --stage kl --task {} "${epoch_argv[@]}" || rc=$?
  ((rc == 0)) || epoch_fail "$rc student task(s) failed twice (job log: $e/parallel.joblog); no verdict, no weights"
  stage_recheck
else
  epoch_log "no new challenger: no teacher or student compute this epoch"
fi
stage_judge
cat "$e/verdict.json"
