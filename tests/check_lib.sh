# check_lib.sh - pass/fail counting shared by the command-line test scripts (tests/cli_*.sh).
# Source it after making a scratch folder: `check_scratch=DIR; . "$(dirname "$0")/check_lib.sh"`.
# check NAME COMMAND... runs the command with its output in $check_output, counts it, and prints
# "ok   NAME", or "FAIL NAME" and that output indented; check_summary prints the counts and
# returns non-zero when a check failed (the script's exit status).
passed=0
failed=0
check_output="${check_scratch:?set check_scratch before sourcing check_lib.sh}/check.txt"

check() {
  local name=$1
  shift
  if "$@" >"$check_output" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    sed 's/^/     /' "$check_output"
  fi
}

check_summary() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
