#!/bin/bash
# Every benchmark of bench/README.md, one after another (never two at once: they share 2 cores).
#   bash bench/run_all.sh [OUT_DIR]    → OUT_DIR/<name>.out (JSON lines), <name>.err, and a log with load averages
set -u
cd "$(dirname "$0")/.."
out=${1:-bench-results}
mkdir -p "$out"
run() {
    name=$1; shift
    echo "### $name $(date +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/log"
    "$@" > "$out/$name.out" 2> "$out/$name.err"
    echo "### $name done rc=$? $(date +%H:%M:%S)" >> "$out/log"
}
run send_sqlite_20k python bench/send_throughput.py -n 20000 --repeat 2 --db sqlite
run send_pg_20k python bench/send_throughput.py -n 20000 --repeat 2 --db pg
run contract_send python bench/contract_send.py -n 5000 --repeat 3
run api_sqlite python bench/api_load.py --db sqlite --seconds 8
run api_pg python bench/api_load.py --db pg --seconds 8
run api_sqlite_w2 python bench/api_load.py --db sqlite --seconds 8 --workers 2
run materialise_pg python bench/materialise.py -n 1000000 --db pg --repeat 1
run materialise_sqlite python bench/materialise.py -n 1000000 --db sqlite --repeat 1
run import_pg python bench/import_csv.py -n 1000000 --db pg
run scale_out python bench/scale_out.py -n 6000
run memory python bench/memory.py -n 20000 200000
run send_sqlite_200k python bench/send_throughput.py -n 200000 --db sqlite
run send_pg_200k python bench/send_throughput.py -n 200000 --db pg
run mailman python bench/mailman_compare.py -n 5000
echo "### all done $(date +%H:%M:%S)" >> "$out/log"
