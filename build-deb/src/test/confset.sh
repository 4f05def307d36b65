#!/bin/sh
# confset.sh FILE SECTION KEY VALUE [SECTION KEY VALUE ...] > NEWFILE
# Print FILE with KEY in [SECTION] set to VALUE: an active or commented-out
# line for the key is replaced, else the key is added at the end of the
# section.  Used by the demo and the end-to-end test to adjust the example
# configuration that users copy, and nothing else.
f=$1; shift
awk -v spec="$(printf '%s\034' "$@")" '
BEGIN { n = split(spec, a, "\034"); for (i = 1; i + 2 <= n; i += 3) { k = a[i] SUBSEP a[i+1]; want[k] = a[i+2]; order[++m] = k } }
function flush(sec,   i, k, p) { for (i = 1; i <= m; i++) { k = order[i]; split(k, p, SUBSEP); if (p[1] == sec && !(k in done)) { print p[2] " = " want[k]; done[k] = 1 } } }
/^[ \t]*\[/ { flush(sec); s = $0; gsub(/^[ \t]*\[|\][ \t]*.*$/, "", s); sec = s; print; next }
{ line = $0; key = line; sub(/^[ \t]*[;#]?[ \t]*/, "", key); sub(/[ \t]*=.*$/, "", key);
  k = sec SUBSEP key
  if ((k in want) && !(k in done) && line ~ /=/) { print key " = " want[k]; done[k] = 1; next }
  print }
END { flush(sec); for (i = 1; i <= m; i++) { k = order[i]; if (!(k in done)) { split(k, p, SUBSEP); print "[" p[1] "]"; print p[2] " = " want[k] } } }
' "$f"
