# Sourced by the suites that run pipelines/epoch.sh on the demo (concurrency, diskfull, memory): the
# demo's epochs in a small form (4 prompts, 24 new tokens, 1 thread) and byte comparisons of work folders.
# Needs: root, bin, t (the suite's scratch folder), fail.
demo="$root/demo"
hash() { printf 'demo block %s' "$1" | sha256sum | cut -c1-64; }
sed "s|\"repo\": \"demo/|\"repo\": \"$demo/|" "$demo/commitments.jsonl" > "$t/commitments-200.jsonl"
head -n 1 "$t/commitments-200.jsonl" > "$t/commitments-120.jsonl"

# args WORK BLOCK [BIN]: epoch.sh's command line for that demo epoch (into the array a): block 120 the
# king alone, 200 and later the king and the challenger.
args() {
  local c=200
  (($2 == 120)) && c=120
  a=("$root/pipelines/epoch.sh" --work "$1" --teacher "$demo/teacher" --count 4 --max-new-tokens 24
     --vocab-size 512 --threads 1 --bin "${3:-$bin}" --commitments "$t/commitments-$c.jsonl" --block "$2"
     --block-hash "$(hash "$2")" "$demo/corpus.jsonl.zst")
}

# list DIR: the files compared (timings hold durations; the report is drawn again at every judge run;
# every run opens the lock).
list() { (cd "$1" && find . -type f ! -name timings.jsonl ! -name report.html ! -name .lock | LC_ALL=C sort); }
# same_files DIR REF FILE...: those files of DIR are byte-identical to REF's (kl.done and kl/UID.done
# name files of their folder: compared from the epoch folder on); same DIR REF: all of them, and the
# two hold the same files.
same_files() {
  local d=$1 rf=$2 f; shift 2
  for f in "$@"; do
    case "$f" in
      *.done) cmp -s <(sed -E 's|"[^"]*/(epoch-[0-9]+/)|"DIR/\1|g' "$d/$f") <(sed -E 's|"[^"]*/(epoch-[0-9]+/)|"DIR/\1|g' "$rf/$f") ;;
      *) cmp -s "$d/$f" "$rf/$f" ;;
    esac || fail "$d/$f differs from the undisturbed run's"
  done
}
same() {
  local files
  diff <(list "$2") <(list "$1") >&2 || fail "$1: not the same files as the undisturbed run"
  mapfile -t files < <(list "$2")
  same_files "$1" "$2" "${files[@]}"
}
