#!/usr/bin/env bash
# One validator epoch on a Slurm cluster: the stages of pipelines/epoch.sh as jobs, the students at the
# same time, with the same work folder, artifacts and cached-artifact rule (a resubmitted epoch resumes;
# pipelines/reproduce.sh re-scores it like any other).
#
#   pipelines/slurm/submit-epoch.sh [SLURM OPTIONS] --work DIR --commitments FILE --teacher DIR \
#       --block N --block-hash HEX CORPUS...
#
#   job 1  prepare.sbatch   fetch, check, plan, prompts; then submits the rest, sized by the plan:
#   job 2  teacher.sbatch   the teacher (one big-memory node: --teacher-mem)
#   job 3  student.sbatch   an array, one task per planned model (--student-cpus threads each), after job 2;
#                           each reads teacher.dlt from the shared filesystem and writes its kl/UID.jsonl
#                           atomically (a model that cannot be scored: its failure record, a finished
#                           task); a failed task runs once more, then fails
#   job 4  finish.sbatch    the re-check and the judge, only when every student task succeeded
#                           (--dependency=afterok, --kill-on-invalid-dep): a failed student fails the epoch
#                           and no verdict.json — so no weights — appears
# With no new challenger the plan is empty and only job 4 follows job 1.
#
# The repository, the tools (--bin) and DIR must be on a filesystem every node sees at the same path.
# Logs: DIR/epoch-N/slurm/NAME-JOBID.log; job ids: DIR/epoch-N/slurm/jobs. Prints the prepare job's id,
# or with --wait waits for the epoch and prints its verdict (exit 1 when the epoch failed).
set -euo pipefail
EPOCH_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
source "$EPOCH_ROOT/pipelines/lib/epoch-stages.sh"

usage() {
  epoch_header_help "$0"
  cat <<'USAGE'
Slurm options (sizing: README, "Scale out"):
  --partition P            partition of every job (default: the cluster's default)
  --teacher-partition P    partition of the teacher job (default: --partition)
  --teacher-cpus N         CPUs (threads) of the teacher job (16)
  --teacher-mem SIZE       memory of the teacher job (default: what `dl-teacher run --plan` says this
                           epoch's run needs, + 10%, where the build has it; else 80G: the real
                           teacher needs ~75 GB)
  --student-cpus N         CPUs per student task, its dl-kl --threads (8)
  --student-mem SIZE       memory per student task (16G: a 5.3B-parameter bf16 student and its buffers)
  --cpus N                 CPUs of the prepare and finish jobs (2)
  --sbatch-args "ARGS"     more sbatch options for every job (account, qos, time limits), split on spaces
  --wait                   wait for the epoch, print its verdict; exit 1 if it failed
  --metrics FILE           with --wait: the epoch's Prometheus metrics into FILE at exit, as
                           pipelines/epoch.sh does (also when the epoch failed)
(--threads is not used: every job's stages take the job's CPUs, SLURM_CPUS_PER_TASK.)
USAGE
  epoch_options_help
}

: "${DISTIL_SLURM_PARTITION:=}" "${DISTIL_SLURM_TEACHER_PARTITION:=}" "${DISTIL_SLURM_TEACHER_CPUS:=16}"
: "${DISTIL_SLURM_TEACHER_MEM:=}" "${DISTIL_SLURM_STUDENT_CPUS:=8}" "${DISTIL_SLURM_STUDENT_MEM:=16G}"
: "${DISTIL_SLURM_CPUS:=2}" "${DISTIL_SLURM_SBATCH_ARGS:=}"
wait_for_it=0 fan_out=0 metrics=""
epoch_driver_option() {
  case "$1" in
    --metrics) metrics=$2 ;;
    --partition) DISTIL_SLURM_PARTITION=$2 ;;
    --teacher-partition) DISTIL_SLURM_TEACHER_PARTITION=$2 ;;
    --teacher-cpus) DISTIL_SLURM_TEACHER_CPUS=$2 ;;
    --teacher-mem) DISTIL_SLURM_TEACHER_MEM=$2 ;;
    --student-cpus) DISTIL_SLURM_STUDENT_CPUS=$2 ;;
    --student-mem) DISTIL_SLURM_STUDENT_MEM=$2 ;;
    --cpus) DISTIL_SLURM_CPUS=$2 ;;
    --sbatch-args) DISTIL_SLURM_SBATCH_ARGS=$2 ;;
    *) return 1 ;;
  esac
}
args=()
for a in "$@"; do
  case "$a" in
    -h|--help) usage; exit 0 ;;
    --wait) wait_for_it=1 ;;
    --fan-out) fan_out=1 ;;    # internal: the prepare job submitting the rest
    *) args+=("$a") ;;
  esac
done
epoch_parse "${args[@]}"
[[ -z "$metrics" ]] || ((wait_for_it)) || epoch_usage_error "--metrics goes with --wait (the metrics are written when the epoch ends)"
epoch_validate
epoch_absolute
epoch_args
for v in DISTIL_SLURM_TEACHER_CPUS DISTIL_SLURM_STUDENT_CPUS DISTIL_SLURM_CPUS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || epoch_usage_error "--$(tr A-Z_ a-z- <<< "${v#DISTIL_SLURM_}") must be a positive number"
done
command -v sbatch >/dev/null || epoch_fail "sbatch is not on PATH: is this a Slurm submit host?"
export DISTIL_SLURM_PARTITION DISTIL_SLURM_TEACHER_PARTITION DISTIL_SLURM_TEACHER_CPUS DISTIL_SLURM_TEACHER_MEM \
  DISTIL_SLURM_STUDENT_CPUS DISTIL_SLURM_STUDENT_MEM DISTIL_SLURM_CPUS DISTIL_SLURM_SBATCH_ARGS
export DISTIL_ROOT="$EPOCH_ROOT"
slurm="$e/slurm"

# submit NAME SCRIPT SBATCH-OPTIONS...: one job of this epoch; prints its id.
submit() {
  local name=$1 script=$2 extra=() log="$slurm/$1-%j.log"; shift 2
  [[ -n "$DISTIL_SLURM_PARTITION" ]] && extra+=(--partition "$DISTIL_SLURM_PARTITION")
  [[ "$*" == *--array* ]] && log="$slurm/$name-%A_%a.log"
  # shellcheck disable=SC2206  # extra sbatch options are words on purpose
  extra+=($DISTIL_SLURM_SBATCH_ARGS)
  sbatch --parsable --job-name "distil-$block-$name" --output "$log" --chdir "$work" --export ALL \
    "${extra[@]}" "$@" "$EPOCH_ROOT/pipelines/slurm/$script" "${epoch_argv[@]}" | cut -d';' -f1
}

# teacher_mem: --teacher-mem, else the memory plan of this epoch's teacher run (need_bytes + 10%, in
# MiB; kept in slurm/teacher-plan.json), else 80G. The plan may say the run does not fit this (prepare)
# node: it still gives the figure.
teacher_mem() {
  local need
  if [[ -n "$DISTIL_SLURM_TEACHER_MEM" ]]; then echo "$DISTIL_SLURM_TEACHER_MEM"; return; fi
  if "$bin/dl-teacher" run --help 2>/dev/null | grep -q -- '--plan'; then
    "$bin/dl-teacher" run --plan --model "$teacher" --max-new-tokens "$max_new" --threads "$DISTIL_SLURM_TEACHER_CPUS" \
      "$e/prompts.jsonl" > "$slurm/teacher-plan.json" 2>/dev/null || true
    need=$(sed -n 's/.*"need_bytes" *: *\([0-9][0-9]*\).*/\1/p' "$slurm/teacher-plan.json")
    if [[ -n "$need" ]]; then echo "$(( (need + need / 10 + 1048575) / 1048576 ))M"; return; fi
    epoch_log "slurm: dl-teacher run --plan gave no need_bytes (see $slurm/teacher-plan.json); asking for 80G"
  fi
  echo 80G
}

if ((fan_out)); then
  n=$(epoch_planned)
  after=() mem=""
  if ((n)); then
    tpart=()
    [[ -n "${DISTIL_SLURM_TEACHER_PARTITION:-}" ]] && tpart=(--partition "$DISTIL_SLURM_TEACHER_PARTITION")
    mem=$(teacher_mem)
    t=$(submit teacher teacher.sbatch --cpus-per-task "$DISTIL_SLURM_TEACHER_CPUS" --mem "$mem" "${tpart[@]}")
    s=$(submit student student.sbatch --array "1-$n" --cpus-per-task "$DISTIL_SLURM_STUDENT_CPUS" \
      --mem "$DISTIL_SLURM_STUDENT_MEM" --dependency "afterok:$t" --kill-on-invalid-dep yes)
    printf 'teacher %s\nstudent %s\n' "$t" "$s" >> "$slurm/jobs"
    after=(--dependency "afterok:$s" --kill-on-invalid-dep yes)
  fi
  f=$(submit finish finish.sbatch --cpus-per-task "$DISTIL_SLURM_CPUS" "${after[@]}")
  printf 'finish %s\n' "$f" >> "$slurm/jobs"
  epoch_log "slurm: $n student task(s)${mem:+, teacher --mem $mem}; finish job $f"
  exit 0
fi

# Epochs of one work folder run one after another (the next one's plan reads the state the previous one
# wrote), as epoch.sh's lock makes them on one box: not while a plain run holds the lock, nor while an
# unfinished Slurm epoch of this folder still has jobs queued or running.
mkdir -p "$work"
exec 9>"$work/.lock"
flock -n 9 || epoch_fail "another epoch is running in $work (lock $work/.lock); not submitting"
for j in "$work"/epoch-*/slurm/jobs; do
  [[ -e "$j" && ! -e "$(dirname "$(dirname "$j")")/verdict.json" ]] || continue
  ids=$(awk '{ printf "%s%s", (NR > 1 ? "," : ""), $2 }' "$j")
  [[ -z "$ids" || -z "$(squeue -h -o %i -j "$ids" 2>/dev/null)" ]] \
    || epoch_fail "the Slurm epoch in $(dirname "$(dirname "$j")") still has jobs queued or running ($ids); not submitting"
done
# The prepare job is submitted held and recorded in slurm/jobs while the lock is still ours, so a second
# submission either waits out the lock or sees this epoch's job; it is released after the lock is
# dropped, because the job itself takes the lock (epoch.sh --stage prepare).
mkdir -p "$slurm"
: > "$slurm/jobs"
p=$(submit prepare prepare.sbatch --cpus-per-task "$DISTIL_SLURM_CPUS" --hold)
[[ -n "$p" ]] || epoch_fail "sbatch did not submit the prepare job"
printf 'prepare %s\n' "$p" >> "$slurm/jobs"
exec 9>&-
scontrol release "$p" || { scancel "$p" 2>/dev/null; epoch_fail "could not release the held prepare job $p"; }
epoch_log "slurm: prepare job $p (logs in $slurm)"
((wait_for_it)) || { echo "$p"; exit 0; }
[[ -z "$metrics" ]] || epoch_metrics_at_exit "$metrics" --keep-parts

# job_running ID: still queued or running (squeue forgets a job soon after it ends).
job_running() { [[ -n "$(squeue -h -j "$1" -o %T 2>/dev/null)" ]]; }
while job_running "$p"; do sleep 1; done
f=$(awk '$1 == "finish" { print $2 }' "$slurm/jobs")
[[ -n "$f" ]] || epoch_fail "epoch $block: the prepare job $p failed (log: $slurm/prepare-$p.log); no verdict, no weights"
while job_running "$f"; do sleep 1; done
state=$(scontrol -o show job "$f" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2 || true)
if [[ ! -e "$e/verdict.json" || ( -n "$state" && "$state" != COMPLETED ) ]]; then
  epoch_fail "epoch $block failed (finish job $f: ${state:-gone}; logs in $slurm); no verdict, no weights"
fi
cat "$e/verdict.json"
