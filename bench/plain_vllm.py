"""The baseline of bench/e2e.py: the job as a plain script would do it with `vllm.LLM`, no prefmill.

It reads a job file (bench/e2e.py writes it: the chat messages, seeds and sampling of every request,
as prefmill would send them, and the judge's prompt template) and does the same work: n samples per
question, one judge score per sample (the same guided-decoding regex), and best-vs-worst DPO pairs as
JSONL. Its own process, its own `vllm.LLM` with vLLM's defaults but for the settings the issue's
baseline named (dtype, `enforce_eager`, `max_model_len=1024`). Prints one JSON line of figures.

    python -m bench.plain_vllm JOB.json OUT_DIR
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path


def main(job_path: str, out_dir: str) -> None:
    began = time.time()
    job = json.loads(Path(job_path).read_text())
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    llm = LLM(job["model"], dtype=job["dtype"], enforce_eager=True, max_model_len=1024)
    tokenizer = llm.get_tokenizer()
    engine_s, tokens = 0.0, 0

    def run(prompts: list[str], params: list) -> list:
        nonlocal engine_s, tokens
        start = time.time()
        outputs = llm.generate(prompts, params, use_tqdm=False)
        engine_s += time.time() - start
        tokens += sum(len(c.token_ids) for o in outputs for c in o.outputs)
        return outputs

    chat = lambda messages: tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)  # noqa: E731
    gen = job["generate"]
    outputs = run([chat(r["messages"]) for r in job["requests"]],
                  [SamplingParams(n=gen["n"], temperature=gen["temperature"], top_p=gen["top_p"],
                                  max_tokens=gen["max_tokens"], seed=r["seed"], logprobs=0) for r in job["requests"]])
    samples = [(r, c.text) for r, o in zip(job["requests"], outputs) for c in sorted(o.outputs, key=lambda c: c.index)]

    judge = job["judge"]
    prompts = [chat([{"role": "user", "content": judge["template"].replace("\0Q\0", r["question"]).replace("\0S\0", text)}])
               for r, text in samples]
    params = [SamplingParams(n=1, temperature=judge["temperature"], max_tokens=judge["max_tokens"], seed=judge["seed"] + i,
                             structured_outputs=StructuredOutputsParams(regex=judge["regex"]))
              for i in range(len(samples))]
    verdicts = run(prompts, params)
    scores = [int(m.group(1)) if (m := re.search(r"Score: (\d+)", v.outputs[0].text)) else None for v in verdicts]

    by_question: dict[str, list[tuple[int, str]]] = {}
    for (r, text), score in zip(samples, scores):
        if score is not None:
            by_question.setdefault(r["question"], []).append((score, text))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "pairs.jsonl").open("w") as f:
        for question, scored in by_question.items():
            scored.sort(key=lambda s: -s[0])
            if scored[0][0] > scored[-1][0]:
                f.write(json.dumps({"prompt": question, "chosen": scored[0][1], "rejected": scored[-1][1]}) + "\n")
    print(json.dumps({"engine_s": engine_s, "output_tokens": tokens, "script_s": time.time() - began}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
