#!/usr/bin/env bash
# Start the server on the shipped model, send every example request of
# docs/api.md with curl, print each command and its answer, stop the server.
#   bash scripts/curl_examples.sh [port]
set -u
port=${1:-8765}
cd "$(dirname "$0")/.."
python -m inference.server --port "$port" --device cpu --model "${MODEL:-data/claude-rust-small}" 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 50); do curl -s "localhost:$port/health" >/dev/null && break; sleep 0.2; done

show() {  # show 'curl arguments...': print the command, then its output
  echo "\$ curl $*"
  eval "curl -s $*"
  echo
  echo
}
u="localhost:$port"
show "$u/health"
show "$u/tokenize -d '{\"text\": \"fn main() {}\"}'"
show "$u/detokenize -d '{\"ids\": [626, 2124, 298, 671]}'"
show "$u/generate -d '{\"prompt\": \"fn main() {\", \"max_new_tokens\": 40, \"do_sample\": false}'"
show "$u/generate -d '{\"prompt\": \"pub fn parse(input: &str) -> Result<\", \"max_new_tokens\": 60, \"seed\": 7, \"stop_sequences\": [\"\\n\\n\"]}'"
show "-N $u/generate_stream -d '{\"prompt\": \"let v = vec![\", \"max_new_tokens\": 5, \"do_sample\": false}'"
show "-i $u/generate -d '{\"prompt\": \"fn\", \"temperature\": -1}'"
show "$u/generate -d '{\"prompt\": \"fn\", \"max_new_tokens\": 0}'"
show "$u/generate -d '{\"prompt\": \"fn\", \"top_p\": 0}'"
show "$u/generate -d '{\"prompt\": \"fn\", \"stop_sequences\": \"\\n\"}'"
cd "$(mktemp -d)"  # two request bodies too big to show on the command line
python -c 'import json; print(json.dumps({"prompt": "let x = 1;\n" * 100}))' > long_prompt.json
python -c 'import json; print(json.dumps({"prompt": "x" * 2000000}))' > huge_body.json
show "$u/generate -d @long_prompt.json"
show "$u/generate -d '{\"prompt\": 42}'"
show "$u/generate -d '{\"promt\": \"fn\"}'"
show "$u/generate -d '{not json'"
show "$u/generate -d '[\"fn\"]'"
show "$u/detokenize -d '{\"ids\": [1, 99999]}'"
show "$u/generate -d '{\"prompt\": \"fn\", \"model\": \"gpt-4\"}'"
show "-i $u/generate"
show "$u/nope"
show "-i $u/generate --data-binary @huge_body.json"
