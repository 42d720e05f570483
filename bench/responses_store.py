"""What storing one Response costs (`ledger/responses.py`): masking its texts with the guard,
then the insert, one response per commit and in group commits (`ResponseWriter`).

    .venv/bin/python bench/responses_store.py                 # SQLite in a temp dir
    .venv/bin/python bench/responses_store.py --database-url postgresql+psycopg://…

The answer is the overhead bench's (~650 characters of prose); the request is read clean by
the guard (`scanned_clean`), so only the answer is scanned, once.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from emancipate.guard import Guard  # noqa: E402
from emancipate.guard.config import GuardConfig  # noqa: E402
from emancipate.ledger import Ledger, LedgerConfig  # noqa: E402
from emancipate.ledger.responses import ResponseStore, StoredResponse  # noqa: E402

ANSWER = ("Revenue grew 12% year on year to 4.2 million while costs stayed flat; the board "
          "approved the new plant and a dividend; the outlook for the next quarter is "
          "cautious but positive, with orders up and margins steady. ") * 3


def stored(response_id: str) -> StoredResponse:
    context = [{"role": "user", "content": "Summarise the quarterly report in one paragraph."},
               {"role": "assistant", "content": ANSWER}]
    response = {"id": response_id, "object": "response", "instructions": "Be concise.",
                "metadata": {}, "output": [{"id": "msg_1", "type": "message", "content": [
                    {"type": "output_text", "text": ANSWER}]}]}
    return StoredResponse(response_id, "key", time.time(), response, context,
                          scanned_clean=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url")
    p.add_argument("-n", type=int, default=2000, help="responses per case")
    args = p.parse_args()
    workdir = tempfile.mkdtemp(prefix="responses-store-")
    url = args.database_url or f"sqlite:///{workdir}/bench.db"
    ledger = Ledger.open(url, LedgerConfig(spill_dir=workdir))
    cases = [("masking only", None, 0), ("insert only, 1 per commit", False, 1),
             ("mask + insert, 1 per commit", True, 1),
             ("mask + insert, 16 per commit", True, 16)]
    guard = Guard.from_config(GuardConfig())
    print(f"database: {ledger.engine.dialect.name}, {args.n} responses per case")
    for label, masked, batch in cases:
        store = ResponseStore(ledger.engine, guard if masked is not False else None)
        t0 = time.perf_counter()
        if batch == 0:
            for i in range(args.n):
                store.row(stored(f"m{i}"))  # the masking step alone
        else:
            for i in range(0, args.n, batch):
                store.save_many([stored(f"{label}-{i + j}") for j in range(batch)])
        print(f"{label:32} {(time.perf_counter() - t0) / args.n * 1000:6.3f} ms a response")
    ledger.close()


if __name__ == "__main__":
    main()
