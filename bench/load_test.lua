-- wrk script for bench/load_test.sh: POST /compare with a rotating set of realistic prompt/answer pairs
-- (30-90 tokens each), so requests differ in length as real traffic does.
local prompts = {
  "Explain why the sky is blue in two sentences.",
  "Write a haiku about autumn leaves falling in a quiet park.",
  "What is the difference between a list and a tuple in Python?",
  "Give me three tips for sleeping better.",
  "Translate to French: good morning, how did you sleep?",
  "Summarise the plot of Romeo and Juliet in one paragraph.",
  "How do I reverse a linked list in place?",
  "Is it safe to eat raw cookie dough? Answer briefly.",
}
local answers = {
  "Sunlight is scattered by the molecules of the atmosphere, and shorter blue wavelengths scatter the most.",
  "I don't know.",
  "Lists are mutable and tuples are immutable; tuples can be dictionary keys, lists cannot.",
  "Keep a regular schedule, avoid screens before bed, and keep the bedroom cool and dark.",
  "Bonjour, comment as-tu dormi ?",
  "Two young lovers from feuding families in Verona marry in secret; a chain of misunderstandings ends in both of their deaths.",
  "Walk the list once, pointing each node's next at the previous node, and return the old tail.",
  "No: raw flour and raw eggs can carry bacteria. Heat-treated dough is fine.",
}
local counter = 0

local function escape(s) return (s:gsub('\\', '\\\\'):gsub('"', '\\"')) end

request = function()
  counter = counter + 1
  local i = counter % #prompts + 1
  local j = (counter * 3) % #answers + 1
  local body = string.format('{"source": "%s", "candidate_a": "%s", "candidate_b": "%s"}',
                             escape(prompts[i]), escape(answers[i]), escape(answers[j]))
  return wrk.format("POST", "/compare", {["Content-Type"] = "application/json"}, body)
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_s=%.1f rps=%.2f p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f " ..
                         "errors_connect=%d errors_read=%d errors_write=%d errors_timeout=%d non2xx=%d\n",
                         summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
                         latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
                         summary.errors.connect, summary.errors.read, summary.errors.write,
                         summary.errors.timeout, summary.errors.status))
end
