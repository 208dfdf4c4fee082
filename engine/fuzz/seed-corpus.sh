#!/usr/bin/env bash
# Rebuilds the checked-in seed corpus (corpus/<target>/) from the fixtures and a few hand-written inputs.
# Seeds are named by their SHA-1, as libFuzzer names what it finds. Kept small on purpose: AOF files are
# cut to their first 2 KiB (which also gives torn tails), RDB files over 4 KiB are left to run.sh, which
# passes fixtures/rdb as an extra seed directory. Usage: bash engine/fuzz/seed-corpus.sh
set -euo pipefail
cd "$(dirname "$0")"
fx=../../fixtures

# put <target> <file>: stores stdin-less file content under its hash.
put() {
  local h
  h="$(sha1sum "$2" | cut -c1-40)"
  cp "$2" "corpus/$1/$h"
}
# with <target> <cfg-byte-octal> <file> [bytes]: the target's config byte, then (the head of) the file.
with() {
  local tmp
  tmp="$(mktemp)"
  { printf "\\$2"; if [ -n "${4:-}" ]; then head -c "$4" "$3"; else cat "$3"; fi; } >"$tmp"
  put "$1" "$tmp"
  rm -f "$tmp"
}
# text <target> <cfg-byte-octal> <printf-format>
text() {
  local tmp
  tmp="$(mktemp)"
  { printf "\\$2"; printf "$3"; } >"$tmp"
  put "$1" "$tmp"
  rm -f "$tmp"
}

rm -rf corpus/rdb_load corpus/resp_request corpus/aof_stream corpus/manifest
mkdir -p corpus/rdb_load corpus/resp_request corpus/aof_stream corpus/manifest

find "$fx" -name '*.manifest' | while read -r f; do put manifest "$f"; done
find "$fx/rdb" -name '*.rdb' -size -4k | while read -r f; do put rdb_load "$f"; done

# AOF streams: each distinct file's head, read whole-file (cfg 0x05: 6-byte chunks) or trickled.
find "$fx/aof" -name '*.aof' -size +0 | sort | while read -r f; do
  with aof_stream 005 "$f" 2048
  with aof_stream 300 "$f" 700
done
# An RDB preamble followed by RESP commands.
tmp="$(mktemp)"
{ printf '\001'; cat "$fx/aof/fresh/appendonlydir/appendonly.aof.1.base.rdb"
  head -c 600 "$fx/aof/timestamps/appendonlydir/appendonly.aof.2.incr.aof"; } >"$tmp"
put aof_stream "$tmp"
rm -f "$tmp"
text aof_stream 000 '#TS:1700000000\r\n*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$4\r\nEXEC\r\n'
text aof_stream 007 '*0\r\n*-1\r\n* 2\r\n$+3\r\nset\r\n$1\r\na\r\n'

# Requests: multibulk heads from the incr files, inline forms, limits (cfg bit 0: small limits; bit 1:
# unauthenticated limits; bit 2: 1-4 byte reads), and reply frames for the frame decoder.
for f in "$fx/aof/timestamps/appendonlydir/appendonly.aof.2.incr.aof" \
         "$fx/aof/multi-incr/appendonlydir/appendonly.aof.2.incr.aof" \
         "$fx/aof/resp-base/appendonlydir/appendonly.aof.2.base.aof"; do
  with resp_request 000 "$f" 1024
  with resp_request 004 "$f" 300
done
text resp_request 000 'PING\r\nset a "b\\x41\\n" '"'"'c\\'"'"'d'"'"'\n\r\n\nGET a\n'
text resp_request 000 '*-1\r\n*0\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n'
text resp_request 001 '*1\r\n$41\r\n'
text resp_request 001 '*13\r\n'
text resp_request 002 '*11\r\n'
text resp_request 002 '*1\r\n$16385\r\n'
text resp_request 000 '*1\r\n*1\r\n$4\r\nPING\r\n'
text resp_request 000 'set "unbalanced\r\n'
text resp_request 004 '%%2\r\n+a\r\n:1\r\n$1\r\nb\r\n*2\r\n,1.5\r\n#t\r\n'
text resp_request 000 '|1\r\n+k\r\n_\r\n>2\r\n=7\r\ntxt:abc\r\n(-123\r\n'
text resp_request 000 '~2\r\n!3\r\nerr\r\n-ERR x\r\n'
text resp_request 000 '*3\r\n*2\r\n*1\r\n$-1\r\n:0\r\n*-1\r\n$?\r\n'

du -sh corpus
