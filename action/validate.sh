#!/usr/bin/env bash
# What action.yml runs: expand the file patterns, then prefkit validate with GitHub annotations, a
# step summary ($GITHUB_STEP_SUMMARY) and the outputs ok and failing ($GITHUB_OUTPUT).
# Inputs come as environment variables: PREFKIT_FILES (space-separated paths or globs, ** allowed),
# PREFKIT_FORMAT (empty: canonical files; a format name or auto: dry-run convert), PREFKIT_FAIL_ON.
set -euo pipefail
shopt -s globstar nullglob
read -ra patterns <<< "${PREFKIT_FILES:?set PREFKIT_FILES to the files to validate}"
files=()
for pattern in "${patterns[@]}"; do
  matches=($pattern)
  if [ ${#matches[@]} -eq 0 ]; then
    echo "::error::prefkit validate: no file matches '$pattern'"
    exit 2
  fi
  files+=("${matches[@]}")
done
args=(validate "${files[@]}" --github --fail-on "${PREFKIT_FAIL_ON:-any}")
if [ -n "${PREFKIT_FORMAT:-}" ]; then
  args+=(--format "$PREFKIT_FORMAT")
fi
exec prefkit "${args[@]}"
