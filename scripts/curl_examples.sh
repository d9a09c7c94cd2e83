#!/usr/bin/env bash
# Start the server on the shipped model, send every example request of
# docs/api.md with curl, print each command and its answer, stop the server.
#   bash scripts/curl_examples.sh [port]        (default 8000, the server's own default)
# If the server cannot start (the port is taken, say), its error is printed and the script fails.
set -u
port=${1:-8000}
cd "$(dirname "$0")/.."
log=$(mktemp)
python -m inference.server --port "$port" --device cpu --model "${MODEL:-data/claude-rust-small}" 2>"$log" &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 100); do
  curl -sf "localhost:$port/health" >/dev/null && break  # 503 while the model loads
  if ! kill -0 $server 2>/dev/null; then
    echo "the server did not start:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.2
done
curl -sf "localhost:$port/health" >/dev/null || { echo "no answer on port $port:" >&2; cat "$log" >&2; exit 1; }

show() {  # show 'curl arguments...': print the command, then its output
  echo "\$ curl $*"
  eval "curl -s $*"
  echo
  echo
}
u="localhost:$port"
show "$u/health"
show "$u/tokenize --json '{\"text\": \"fn main() {}\"}'"
show "$u/detokenize --json '{\"ids\": [626, 2124, 298, 671]}'"
show "$u/generate --json '{\"prompt\": \"fn main() {\", \"max_new_tokens\": 40, \"do_sample\": false}'"
show "$u/generate --json '{\"prompt\": \"pub fn parse(input: &str) -> Result<\", \"max_new_tokens\": 60, \"seed\": 39, \"stop_sequences\": [\"\\n\\n\"]}'"
show "-N $u/generate_stream --json '{\"prompt\": \"let v = vec![\", \"max_new_tokens\": 5, \"do_sample\": false}'"
show "$u/generate --json '{\"prompt\": \"fn main() {\\n    let v = Vec::\", \"max_new_tokens\": 2, \"temperature\": 0.7, \"seed\": 1, \"logprobs\": 2}'"
show "-N $u/generate_stream --json '{\"prompt\": \"fn main() {\\n    let v = Vec::\", \"max_new_tokens\": 2, \"do_sample\": false, \"logprobs\": 2}'"
show "$u/v1/completions --json '{\"model\": \"claude-rust-small\", \"prompt\": \"fn main() {\\n    let v = Vec::\", \"max_tokens\": 2, \"temperature\": 0, \"logprobs\": 2}'"
show "-i $u/generate --json '{\"prompt\": \"fn\", \"temperature\": -1}'"
show "$u/generate --json '{\"prompt\": \"fn\", \"max_new_tokens\": 0}'"
show "$u/generate --json '{\"prompt\": \"fn\", \"top_p\": 0}'"
show "$u/generate --json '{\"prompt\": \"fn\", \"stop_sequences\": \"\\n\"}'"
cd "$(mktemp -d)"  # two request bodies too big to show on the command line
python -c 'import json; print(json.dumps({"prompt": "let x = 1;\n" * 100}))' > long_prompt.json
python -c 'import json; print(json.dumps({"prompt": "x" * 2000000}))' > huge_body.json
show "$u/generate --json @long_prompt.json"
show "$u/generate --json '{\"prompt\": 42}'"
show "$u/generate --json '{\"promt\": \"fn\"}'"
show "$u/generate --json '{\"prompt\": \"fn\", \"seed\": 1, \"seed\": 2}'"
show "$u/generate --json '{\"prompt\": \"\\ud800\"}'"
show "$u/generate --json '{not json'"
show "$u/generate --json '[\"fn\"]'"
show "$u/generate -d '{\"prompt\": \"fn\"}'"
show "$u/detokenize --json '{\"ids\": [1, 99999]}'"
show "$u/generate --json '{\"prompt\": \"fn\", \"model\": \"gpt-4\"}'"
show "-i $u/generate"
show "$u/nope"
show "-i $u/generate --json @huge_body.json"
show "$u/tokenize -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' -d '{\"text\": \"fn\"}'"
show "-i -X OPTIONS $u/generate -H 'Origin: http://localhost:3000' -H 'Access-Control-Request-Method: POST'"
