#!/usr/bin/env bash
# The GPU check, on the GPU machine, from the repository's root:
#
#     bash benchmarks/gpucheck/run.sh .gpucheck "$OUT"
#
# .gpucheck is what `make gpu-check` prepared on a CPU machine (carried to
# the GPU machine beside the working tree). This unpacks its binaries and
# runs `gpucheck run`, which writes OUT/report.md (rewritten after each
# part), results.json, devicetest.txt and logs.tgz, in under 8 minutes.
set -u
dir=${1:?usage: run.sh PREPARED_DIR OUT_DIR}
out=${2:?usage: run.sh PREPARED_DIR OUT_DIR}
shift 2 # the rest: flags for gpucheck run (-runs 1, -budget 4m, ...)
mkdir -p "$out"
work=$(mktemp -d /tmp/kairoscope-gpucheck.XXXXXX)
if ! tar -xzf "$dir/bin.tgz" -C "$work"; then
  echo "gpucheck: cannot unpack $dir/bin.tgz (run make gpu-check on a CPU machine and carry $dir)" | tee "$out/report.md"
  exit 1
fi
# The budget leaves the device call's limit room for unpacking and the
# transfers; timeout stops a stuck check with the report written so far.
timeout -k 10 470 "$work/gpucheck" run -dir "$dir" -bin "$work" -out "$out" -repo "$PWD" -budget 7m "$@"
rc=$?
if [ -f "$out/report.md" ]; then
  sed -n '1,/^## /p' "$out/report.md" | sed '$d'
else
  echo "gpucheck: no report (exit status $rc); the binaries need:"; ldd "$work"/* 2>&1 | head -30
fi
rm -rf "$work"
exit $rc
