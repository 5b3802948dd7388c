#!/usr/bin/env bash
# api_symbols.sh LIBBERTQA_SO BERTQA_H - libbertqa.so exports exactly the functions bertqa.h
# declares: none of the header's is missing (a program would not link) and nothing internal
# leaks out (a program could come to depend on it, and its names could clash with the program's).
set -euo pipefail
lib="$1" header="$2"
declared=$(python3 - "$header" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)           # comments
text = re.sub(r'^\s*#.*$', ' ', text, flags=re.M)             # preprocessor lines
text = re.sub(r'\btypedef\b[^;]*;', ' ', text)                 # typedefs (function pointer types too)
names = set(re.findall(r'\b(bq_\w+)\s*\(', text))
print('\n'.join(sorted(names)))
PY
)
# every defined dynamic symbol of any kind (code, data, read-only data, IFUNCs, weak and unique
# objects), but the version nodes' own (type A: BERTQA_0, ...)
exported=$(nm -D --defined-only "$lib" | awk 'NF >= 3 && $2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u)
[ -n "$declared" ] || { echo "FAIL: no functions found in $header"; exit 1; }
status=0
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
extra=$(comm -13 <(echo "$declared") <(echo "$exported"))
[ -z "$missing" ] || { echo "FAIL: declared in bertqa.h, not exported by $(basename "$lib"):"; echo "$missing"; status=1; }
[ -z "$extra" ] || { echo "FAIL: exported by $(basename "$lib"), not in bertqa.h (add to src/bertqa.map only what the header declares):"; echo "$extra"; status=1; }
[ $status = 0 ] && echo "ok: $(echo "$declared" | wc -l) functions, declared and exported alike"
exit $status
