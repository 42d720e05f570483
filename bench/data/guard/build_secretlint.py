"""Build a third, independent secrets corpus from secretlint's snapshot tests (issue 12).

    .venv/bin/python bench/data/guard/build_secretlint.py /work/.mirror/secretlint+secretlint/repo

The argument is a bare git directory of https://github.com/secretlint/secretlint (MIT); files
are read at its HEAD with `git show`. Output: `public/secretlint.jsonl`, records shaped as in
`build_public.py` (`{"text", "spans", "family", "source", "kind"}`).

This source was added after the guard's rules were written and no rule is written against
it: it is held out whole (no dev half), a second check of what the held-out families of
`build_public.py` predict.

Labels are secretlint's own: the snapshots of its recommended preset
(`secretlint-rule-preset-recommend/test/snapshots/<rule>/<case>/output.json`), which run every
recommended rule over every rule's test inputs and record the exact text (`sourceContent`) and
what was reported (`messages[].range`, UTF-16 offsets). A reported range is a positive span; a
case where nothing is reported is a negative. Left out, decided from the rule and message
names alone: the messages that report identifiers, not secrets (`AWSAccountID`,
`AzureClientId`, `AzureTenantId`: the guard does not claim them), binary inputs (PKCS#12
files), and negatives of cases that carry their own configuration (`.secretlintrc.json`,
`options.ts`: a value allowed by configuration is not a negative), and the cases of
`filter-comments`, which test secretlint's own `secretlint-disable` comments. Family =
`secretlint:<rule>`.
"""

from __future__ import annotations

import argparse
import json
import subprocess

from build_public import OUT, Record, git_show, record, write

PRESET = "packages/@secretlint/secretlint-rule-preset-recommend/test/snapshots/"
IDENTIFIERS = {"AWSAccountID", "AzureClientId", "AzureTenantId"}
CONFIGS = (".secretlintrc.json", "options.ts")
# rules that test secretlint itself, not a kind of secret: its `secretlint-disable` comments
SKIPPED_RULES = {"filter-comments"}


def _offset(text: str, utf16: int) -> int:
    """The str offset of a UTF-16 code-unit offset (JavaScript's) into `text`."""
    units = 0
    for i, ch in enumerate(text):
        if units >= utf16:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text)


def _ls(git_dir: str, under: str) -> list[str]:
    """The files under `under` at HEAD, one per line (case names hold blanks)."""
    return subprocess.run(["git", "--git-dir", git_dir, "ls-tree", "-r", "--name-only", "HEAD",
                           under], check=True, capture_output=True, text=True).stdout.splitlines()


def secretlint(git_dir: str) -> list[Record]:
    paths = set(_ls(git_dir, PRESET))
    cases = sorted({p.rsplit("/", 1)[0] for p in paths if p.endswith("/output.json")})
    out: list[Record] = []
    for case in cases:
        data = json.loads(git_show(git_dir, f"{case}/output.json"))
        if data.get("sourceContentType") != "text":
            continue
        text = data["sourceContent"]
        rule = case.removeprefix(PRESET).split("/", 1)[0].removeprefix("secretlint-rule-")
        if rule in SKIPPED_RULES:
            continue
        messages = data["messages"]
        spans = sorted({(_offset(text, m["range"][0]), _offset(text, m["range"][1]))
                        for m in messages if m.get("messageId") not in IDENTIFIERS})
        if not spans and (messages or any(f"{case}/{c}" in paths for c in CONFIGS)):
            continue  # only identifiers reported, or a negative made by configuration
        if not text.strip():
            continue
        out.append(record(text, [list(s) for s in spans if text[s[0]:s[1]].strip()],
                          f"secretlint:{rule}", "secretlint"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("git_dir", help="bare git dir of secretlint/secretlint")
    args = ap.parse_args()
    records = secretlint(args.git_dir)
    write(OUT / "secretlint.jsonl", records)
    families = {r["family"] for r in records}
    print(f"secretlint: {len(records)} records, {len(families)} families, "
          f"{sum(r['kind'] == 'positive' for r in records)} positive, "
          f"{sum(len(r['spans']) for r in records)} spans")


if __name__ == "__main__":
    main()
