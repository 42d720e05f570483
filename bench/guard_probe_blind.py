"""Texts written blind for issue 12 (sessions 14 and 15): helper sessions told not to read
the guard's code, rules, probes or documentation wrote what people paste into a chat
(config files, code, logs, shell sessions, tool output, tickets, e-mails, runbooks, device
configurations; English, French, and in the second round German, Spanish, Italian), each
positive with the exact value it holds, and look-alikes that hold none. The guard's figures
at the commit that added them were measured before any fix they led to (docs/benchmarks.md);
after that they measure regressions and coverage, not quality.

    .venv/bin/python bench/guard_probe_blind.py [--show] [--baseline]

Files: `bench/data/guard/blind/{secrets,pii}_{positive,negative}.txt` (first round) and
`bench/data/guard/blind2/secrets_{positive,negative}.txt` (second round: tool output,
chat messages, runbooks, device configs, five languages) and `blind3/` (third round, first
measured untuned: less common languages and build files, CI, mail transcripts, chat exports,
Portuguese, Dutch, Polish; tuned on in session 15) and `blind4/` (fourth round, secrets and
personal data, written in session 15: cluster and cloud tool output, notebooks, dumps,
exports, eight languages; tuned on) and `blind5/` (fifth round, first measured untuned,
then tuned on: framework settings, infrastructure code, database consoles, IT e-mails and
handover notes, eleven languages) and `blind6/` (sixth round, first measured untuned, then
tuned on: what office, HR, sales and support staff paste, mobile and web debugging, eleven
languages) and `blind7/` (seventh round, measured once at the end of session 15, tuned on in
session 16: developers, operations and other staff in equal parts, ten languages) and
`blind8/` (eighth round, session 16: 90 credentials of 87 vendors, 43 of them with no
prefix, and 40 vendor look-alikes; `vendors.txt` names them) and `blind9/` (ninth round, session
16: data, on-call, mobile, IoT, helpdesk, legal, HR and support staff, ten languages) and
`blind10/` (tenth: developers, platform, database, security, marketing, finance, teachers,
nurses, clerks; two thirds in ten other languages) and `blind11/` (eleventh: assistants,
back offices, retail, research, freelance web, game servers, logistics) and `blind12/`
(twelfth: 90 credentials of 90 long-tail vendors, 40 vendor look-alikes); each was measured
before the fixes it led to, then tuned on, as was `blind13/` (thirteenth: everyone in a
European company for a week, 60 % in fifteen other languages); `blind14/` (fourteenth: staff
of every kind in North America, the UK, Ireland, Australia, India and Latin America, a quarter
in Spanish, Portuguese, Hinglish, Canadian French) was measured once at the end of session 16
and not tuned on; `blind15/` (fifteenth: Asia-Pacific, the Middle East and Africa, seven in
eight texts in twenty other languages or in code-switched English) was measured before the
fixes it led to in session 17, then tuned on, as was `blind16/` (sixteenth: Eastern Europe, the
Caucasus, Central and South Asia, Latin America, Africa; in their own scripts), and
`blind17/` (seventeenth: a global mix, half technical, half in 30 other languages; measured
once as the held-out round of rounds 15 and 16's fixes, then tuned on), and `blind18/`
(eighteenth: a random day at a multinational's gateway; measured once as the held-out round
of rounds 15 to 17's fixes, then tuned on); `blind19/` (nineteenth: a global mix, as the
seventeenth) and `blind20/` (twentieth: a day at a multinational's gateway, as the eighteenth)
were measured once at the end of session 17 and not tuned on. Rounds 21 to 483 (sessions
18 to 39: one organisation's prompts each, half technical, about half in English) are listed
with what each holds and how it was used in docs/benchmarks.md. Records separated by
`%%` lines: a `## category` line, the text, then for a positive one `@@ value` line per
value (`@@ class value` for personal data). A secret counts as found when a secret finding
overlaps its value; a personal value when a finding of its class overlaps it. Negatives
count as flagged when any finding of the class is reported; `--baseline` adds detect-secrets
1.5 (default plugins and filters, each text scanned as a file) on the secret texts.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from emancipate.guard import Guard, GuardConfig  # noqa: E402
from guard_probe_pasted import texts  # noqa: E402

DATA = HERE / "data" / "guard" / "blind"
ROUNDS = {"first round": DATA, "second round": HERE / "data" / "guard" / "blind2",
          "third round": HERE / "data" / "guard" / "blind3",
          "fourth round": HERE / "data" / "guard" / "blind4",
          "fifth round": HERE / "data" / "guard" / "blind5",
          "sixth round": HERE / "data" / "guard" / "blind6",
          "seventh round": HERE / "data" / "guard" / "blind7",
          "eighth round": HERE / "data" / "guard" / "blind8",
          "ninth round": HERE / "data" / "guard" / "blind9",
          "tenth round": HERE / "data" / "guard" / "blind10",
          "eleventh round": HERE / "data" / "guard" / "blind11",
          "twelfth round": HERE / "data" / "guard" / "blind12",
          "thirteenth round": HERE / "data" / "guard" / "blind13",
          "fourteenth round": HERE / "data" / "guard" / "blind14",
          "fifteenth round": HERE / "data" / "guard" / "blind15",
          "sixteenth round": HERE / "data" / "guard" / "blind16",
          "seventeenth round": HERE / "data" / "guard" / "blind17",
          "eighteenth round": HERE / "data" / "guard" / "blind18",
          "nineteenth round": HERE / "data" / "guard" / "blind19",
          "twentieth round": HERE / "data" / "guard" / "blind20",
          "twenty-first round": HERE / "data" / "guard" / "blind21",
          "twenty-second round": HERE / "data" / "guard" / "blind22",
          "twenty-third round": HERE / "data" / "guard" / "blind23",
          "twenty-fourth round": HERE / "data" / "guard" / "blind24",
          "twenty-fifth round": HERE / "data" / "guard" / "blind25",
          "twenty-sixth round": HERE / "data" / "guard" / "blind26",
          "twenty-seventh round": HERE / "data" / "guard" / "blind27",
          "twenty-eighth round": HERE / "data" / "guard" / "blind28",
          "twenty-ninth round": HERE / "data" / "guard" / "blind29",
          "thirtieth round": HERE / "data" / "guard" / "blind30",
          "thirty-first round": HERE / "data" / "guard" / "blind31",
          "thirty-second round": HERE / "data" / "guard" / "blind32",
          "thirty-third round": HERE / "data" / "guard" / "blind33",
          "thirty-fourth round": HERE / "data" / "guard" / "blind34",
          "thirty-fifth round": HERE / "data" / "guard" / "blind35",
          "thirty-sixth round": HERE / "data" / "guard" / "blind36",
          "thirty-seventh round": HERE / "data" / "guard" / "blind37",
          "thirty-eighth round": HERE / "data" / "guard" / "blind38",
          "thirty-ninth round": HERE / "data" / "guard" / "blind39",
          "fortieth round": HERE / "data" / "guard" / "blind40",
          "forty-first round": HERE / "data" / "guard" / "blind41",
          "forty-second round": HERE / "data" / "guard" / "blind42",
          "forty-third round": HERE / "data" / "guard" / "blind43",
          "forty-fourth round": HERE / "data" / "guard" / "blind44",
          "forty-fifth round": HERE / "data" / "guard" / "blind45",
          "forty-sixth round": HERE / "data" / "guard" / "blind46",
          "forty-seventh round": HERE / "data" / "guard" / "blind47",
          "forty-eighth round": HERE / "data" / "guard" / "blind48",
          "forty-ninth round": HERE / "data" / "guard" / "blind49",
          "fifty-second round": HERE / "data" / "guard" / "blind52",
          "fifty-third round": HERE / "data" / "guard" / "blind53",
          "fifty-fourth round": HERE / "data" / "guard" / "blind54",
          "fifty-fifth round": HERE / "data" / "guard" / "blind55",
          "fifty-sixth round": HERE / "data" / "guard" / "blind56",
          "fifty-seventh round": HERE / "data" / "guard" / "blind57",
          "sixtieth round": HERE / "data" / "guard" / "blind60",
          "sixty-first round": HERE / "data" / "guard" / "blind61",
          "sixty-second round": HERE / "data" / "guard" / "blind62",
          "sixty-third round": HERE / "data" / "guard" / "blind63",
          "sixty-fifth round": HERE / "data" / "guard" / "blind65",
          "sixty-sixth round": HERE / "data" / "guard" / "blind66",
          "sixty-seventh round": HERE / "data" / "guard" / "blind67",
          "fiftieth round": HERE / "data" / "guard" / "blind50",
          "fifty-first round": HERE / "data" / "guard" / "blind51",
          "fifty-eighth round": HERE / "data" / "guard" / "blind58",
          "fifty-ninth round": HERE / "data" / "guard" / "blind59",
          "sixty-fourth round": HERE / "data" / "guard" / "blind64",
          "sixty-eighth round": HERE / "data" / "guard" / "blind68",
          "seventieth round": HERE / "data" / "guard" / "blind70",
          "seventy-first round": HERE / "data" / "guard" / "blind71",
          "seventy-third round": HERE / "data" / "guard" / "blind73",
          "seventy-fourth round": HERE / "data" / "guard" / "blind74",
          "seventy-sixth round": HERE / "data" / "guard" / "blind76",
          "seventy-ninth round": HERE / "data" / "guard" / "blind79",
          "eightieth round": HERE / "data" / "guard" / "blind80",
          "eighty-second round": HERE / "data" / "guard" / "blind82",
          "seventy-seventh round": HERE / "data" / "guard" / "blind77",
          "eighty-third round": HERE / "data" / "guard" / "blind83",
          "eighty-fourth round": HERE / "data" / "guard" / "blind84",
          "eighty-fifth round": HERE / "data" / "guard" / "blind85",
          "eighty-seventh round": HERE / "data" / "guard" / "blind87",
          "eighty-eighth round": HERE / "data" / "guard" / "blind88",
          "ninetieth round": HERE / "data" / "guard" / "blind90",
          "ninety-first round": HERE / "data" / "guard" / "blind91",
          "ninety-second round": HERE / "data" / "guard" / "blind92",
          "ninety-fourth round": HERE / "data" / "guard" / "blind94",
          "ninety-fifth round": HERE / "data" / "guard" / "blind95",
          "ninety-seventh round": HERE / "data" / "guard" / "blind97",
          "ninety-eighth round": HERE / "data" / "guard" / "blind98",
          "hundredth round": HERE / "data" / "guard" / "blind100",
          "hundred-and-second round": HERE / "data" / "guard" / "blind102",
          "hundred-and-third round": HERE / "data" / "guard" / "blind103",
          "hundred-and-fifth round": HERE / "data" / "guard" / "blind105",
          "hundred-and-sixth round": HERE / "data" / "guard" / "blind106",
          "hundred-and-eighth round": HERE / "data" / "guard" / "blind108",
          "hundred-and-tenth round": HERE / "data" / "guard" / "blind110",
          "hundred-and-eleventh round": HERE / "data" / "guard" / "blind111",
          "hundred-and-thirteenth round": HERE / "data" / "guard" / "blind113",
          "hundred-and-fourteenth round": HERE / "data" / "guard" / "blind114",
          "hundred-and-sixteenth round": HERE / "data" / "guard" / "blind116",
          "hundred-and-eighteenth round": HERE / "data" / "guard" / "blind118",
          "hundred-and-nineteenth round": HERE / "data" / "guard" / "blind119",
          "hundred-and-twenty-first round": HERE / "data" / "guard" / "blind121",
          "hundred-and-twenty-second round": HERE / "data" / "guard" / "blind122",
          "hundred-and-twenty-fourth round": HERE / "data" / "guard" / "blind124",
          "hundred-and-twenty-sixth round": HERE / "data" / "guard" / "blind126",
          "hundred-and-twenty-seventh round": HERE / "data" / "guard" / "blind127",
          "hundred-and-twenty-ninth round": HERE / "data" / "guard" / "blind129",
          "hundred-and-thirtieth round": HERE / "data" / "guard" / "blind130",
          "hundred-and-thirty-second round": HERE / "data" / "guard" / "blind132",
          "hundred-and-thirty-fourth round": HERE / "data" / "guard" / "blind134",
          "hundred-and-thirty-fifth round": HERE / "data" / "guard" / "blind135",
          "hundred-and-thirty-seventh round": HERE / "data" / "guard" / "blind137",
          "hundred-and-thirty-eighth round": HERE / "data" / "guard" / "blind138",
          "hundred-and-fortieth round": HERE / "data" / "guard" / "blind140",
          "hundred-and-forty-second round": HERE / "data" / "guard" / "blind142",
          "hundred-and-forty-third round": HERE / "data" / "guard" / "blind143",
          "hundred-and-forty-fifth round": HERE / "data" / "guard" / "blind145",
          "hundred-and-forty-sixth round": HERE / "data" / "guard" / "blind146",
          "hundred-and-forty-eighth round": HERE / "data" / "guard" / "blind148",
          "hundred-and-fiftieth round": HERE / "data" / "guard" / "blind150",
          "hundred-and-fifty-first round": HERE / "data" / "guard" / "blind151",
          "hundred-and-fifty-third round": HERE / "data" / "guard" / "blind153",
          "hundred-and-fifty-fourth round": HERE / "data" / "guard" / "blind154",
          "hundred-and-fifty-sixth round": HERE / "data" / "guard" / "blind156",
          "hundred-and-fifty-eighth round": HERE / "data" / "guard" / "blind158",
          "hundred-and-fifty-ninth round": HERE / "data" / "guard" / "blind159",
          "hundred-and-sixty-first round": HERE / "data" / "guard" / "blind161",
          "hundred-and-sixty-second round": HERE / "data" / "guard" / "blind162",
          "hundred-and-sixty-fourth round": HERE / "data" / "guard" / "blind164",
          "hundred-and-sixty-sixth round": HERE / "data" / "guard" / "blind166",
          "hundred-and-sixty-seventh round": HERE / "data" / "guard" / "blind167",
          "hundred-and-sixty-ninth round": HERE / "data" / "guard" / "blind169",
          "hundred-and-seventieth round": HERE / "data" / "guard" / "blind170",
          "hundred-and-seventy-second round": HERE / "data" / "guard" / "blind172",
          "hundred-and-seventy-fourth round": HERE / "data" / "guard" / "blind174",
          "hundred-and-seventy-fifth round": HERE / "data" / "guard" / "blind175",
          "hundred-and-seventy-seventh round": HERE / "data" / "guard" / "blind177",
          "hundred-and-seventy-eighth round": HERE / "data" / "guard" / "blind178",
          "hundred-and-eighty-third round": HERE / "data" / "guard" / "blind183",
          "hundred-and-eighty-fifth round": HERE / "data" / "guard" / "blind185",
          "hundred-and-eightieth round": HERE / "data" / "guard" / "blind180",
          "hundred-and-eighty-second round": HERE / "data" / "guard" / "blind182",
          "hundred-and-eighty-sixth round": HERE / "data" / "guard" / "blind186",
          "hundred-and-eighty-eighth round": HERE / "data" / "guard" / "blind188",
          "hundred-and-ninetieth round": HERE / "data" / "guard" / "blind190",
          "hundred-and-ninety-first round": HERE / "data" / "guard" / "blind191",
          "hundred-and-ninety-third round": HERE / "data" / "guard" / "blind193",
          "hundred-and-ninety-fourth round": HERE / "data" / "guard" / "blind194",
          "hundred-and-ninety-sixth round": HERE / "data" / "guard" / "blind196",
          "hundred-and-ninety-eighth round": HERE / "data" / "guard" / "blind198",
          "hundred-and-ninety-ninth round": HERE / "data" / "guard" / "blind199",
          "two-hundred-and-first round": HERE / "data" / "guard" / "blind201",
          "two-hundred-and-second round": HERE / "data" / "guard" / "blind202",
          "two-hundred-and-fourth round": HERE / "data" / "guard" / "blind204",
          "two-hundred-and-sixth round": HERE / "data" / "guard" / "blind206",
          "two-hundred-and-seventh round": HERE / "data" / "guard" / "blind207",
          "two-hundred-and-ninth round": HERE / "data" / "guard" / "blind209",
          "two-hundred-and-tenth round": HERE / "data" / "guard" / "blind210",
          "two-hundred-and-twelfth round": HERE / "data" / "guard" / "blind212",
          "two-hundred-and-fourteenth round": HERE / "data" / "guard" / "blind214",
          "two-hundred-and-fifteenth round": HERE / "data" / "guard" / "blind215",
          "two-hundred-and-seventeenth round": HERE / "data" / "guard" / "blind217",
          "two-hundred-and-eighteenth round": HERE / "data" / "guard" / "blind218",
          "two-hundred-and-twentieth round": HERE / "data" / "guard" / "blind220",
          "two-hundred-and-twenty-second round": HERE / "data" / "guard" / "blind222",
          "two-hundred-and-twenty-third round": HERE / "data" / "guard" / "blind223",
          "two-hundred-and-twenty-fifth round": HERE / "data" / "guard" / "blind225",
          "two-hundred-and-twenty-sixth round": HERE / "data" / "guard" / "blind226",
          "two-hundred-and-twenty-eighth round": HERE / "data" / "guard" / "blind228",
          "two-hundred-and-thirtieth round": HERE / "data" / "guard" / "blind230",
          "two-hundred-and-thirty-first round": HERE / "data" / "guard" / "blind231",
          "two-hundred-and-thirty-third round": HERE / "data" / "guard" / "blind233",
          "two-hundred-and-thirty-fourth round": HERE / "data" / "guard" / "blind234",
          "two-hundred-and-thirty-sixth round": HERE / "data" / "guard" / "blind236",
          "two-hundred-and-thirty-eighth round": HERE / "data" / "guard" / "blind238",
          "two-hundred-and-thirty-ninth round": HERE / "data" / "guard" / "blind239",
          "two-hundred-and-forty-first round": HERE / "data" / "guard" / "blind241",
          "two-hundred-and-forty-second round": HERE / "data" / "guard" / "blind242",
          "two-hundred-and-forty-fourth round": HERE / "data" / "guard" / "blind244",
          "two-hundred-and-forty-sixth round": HERE / "data" / "guard" / "blind246",
          "two-hundred-and-forty-seventh round": HERE / "data" / "guard" / "blind247",
          "two-hundred-and-forty-ninth round": HERE / "data" / "guard" / "blind249",
          "two-hundred-and-fiftieth round": HERE / "data" / "guard" / "blind250",
          "two-hundred-and-fifty-second round": HERE / "data" / "guard" / "blind252",
          "two-hundred-and-fifty-fourth round": HERE / "data" / "guard" / "blind254",
          "two-hundred-and-fifty-fifth round": HERE / "data" / "guard" / "blind255",
          "two-hundred-and-fifty-seventh round": HERE / "data" / "guard" / "blind257",
          "two-hundred-and-fifty-eighth round": HERE / "data" / "guard" / "blind258",
          "two-hundred-and-sixtieth round": HERE / "data" / "guard" / "blind260",
          "two-hundred-and-sixty-second round": HERE / "data" / "guard" / "blind262",
          "two-hundred-and-sixty-third round": HERE / "data" / "guard" / "blind263",
          "two-hundred-and-sixty-fifth round": HERE / "data" / "guard" / "blind265",
          "two-hundred-and-sixty-sixth round": HERE / "data" / "guard" / "blind266",
          "two-hundred-and-sixty-eighth round": HERE / "data" / "guard" / "blind268",
          "two-hundred-and-seventieth round": HERE / "data" / "guard" / "blind270",
          "two-hundred-and-seventy-first round": HERE / "data" / "guard" / "blind271",
          "two-hundred-and-seventy-third round": HERE / "data" / "guard" / "blind273",
          "two-hundred-and-seventy-fourth round": HERE / "data" / "guard" / "blind274",
          "two-hundred-and-seventy-sixth round": HERE / "data" / "guard" / "blind276",
          "two-hundred-and-seventy-eighth round": HERE / "data" / "guard" / "blind278",
          "two-hundred-and-seventy-ninth round": HERE / "data" / "guard" / "blind279",
          "two-hundred-and-eighty-first round": HERE / "data" / "guard" / "blind281",
          "two-hundred-and-eighty-second round": HERE / "data" / "guard" / "blind282",
          "two-hundred-and-eighty-fourth round": HERE / "data" / "guard" / "blind284",
          "two-hundred-and-eighty-sixth round": HERE / "data" / "guard" / "blind286",
          "two-hundred-and-eighty-seventh round": HERE / "data" / "guard" / "blind287",
          "two-hundred-and-eighty-ninth round": HERE / "data" / "guard" / "blind289",
          "two-hundred-and-ninetieth round": HERE / "data" / "guard" / "blind290",
          "two-hundred-and-ninety-second round": HERE / "data" / "guard" / "blind292",
          "two-hundred-and-ninety-fourth round": HERE / "data" / "guard" / "blind294",
          "two-hundred-and-ninety-fifth round": HERE / "data" / "guard" / "blind295",
          "two-hundred-and-ninety-seventh round": HERE / "data" / "guard" / "blind297",
          "two-hundred-and-ninety-eighth round": HERE / "data" / "guard" / "blind298",
          "three-hundredth round": HERE / "data" / "guard" / "blind300",
          "three-hundred-and-second round": HERE / "data" / "guard" / "blind302",
          "three-hundred-and-third round": HERE / "data" / "guard" / "blind303",
          "three-hundred-and-fifth round": HERE / "data" / "guard" / "blind305",
          "three-hundred-and-sixth round": HERE / "data" / "guard" / "blind306",
          "three-hundred-and-eighth round": HERE / "data" / "guard" / "blind308",
          "three-hundred-and-tenth round": HERE / "data" / "guard" / "blind310",
          "three-hundred-and-eleventh round": HERE / "data" / "guard" / "blind311",
          "three-hundred-and-thirteenth round": HERE / "data" / "guard" / "blind313",
          "three-hundred-and-fourteenth round": HERE / "data" / "guard" / "blind314",
          "three-hundred-and-sixteenth round": HERE / "data" / "guard" / "blind316",
          "three-hundred-and-eighteenth round": HERE / "data" / "guard" / "blind318",
          "three-hundred-and-nineteenth round": HERE / "data" / "guard" / "blind319",
          "three-hundred-and-twenty-first round": HERE / "data" / "guard" / "blind321",
          "three-hundred-and-twenty-second round": HERE / "data" / "guard" / "blind322",
          "three-hundred-and-twenty-fourth round": HERE / "data" / "guard" / "blind324",
          "three-hundred-and-twenty-sixth round": HERE / "data" / "guard" / "blind326",
          "three-hundred-and-twenty-seventh round": HERE / "data" / "guard" / "blind327",
          "three-hundred-and-twenty-ninth round": HERE / "data" / "guard" / "blind329",
          "three-hundred-and-thirtieth round": HERE / "data" / "guard" / "blind330",
          "three-hundred-and-thirty-second round": HERE / "data" / "guard" / "blind332",
          "three-hundred-and-thirty-fourth round": HERE / "data" / "guard" / "blind334",
          "three-hundred-and-thirty-fifth round": HERE / "data" / "guard" / "blind335",
          "three-hundred-and-thirty-seventh round": HERE / "data" / "guard" / "blind337",
          "three-hundred-and-thirty-eighth round": HERE / "data" / "guard" / "blind338",
          "three-hundred-and-fortieth round": HERE / "data" / "guard" / "blind340",
          "three-hundred-and-forty-second round": HERE / "data" / "guard" / "blind342",
          "three-hundred-and-forty-third round": HERE / "data" / "guard" / "blind343",
          "three-hundred-and-forty-fifth round": HERE / "data" / "guard" / "blind345",
          "three-hundred-and-forty-sixth round": HERE / "data" / "guard" / "blind346",
          "three-hundred-and-forty-eighth round": HERE / "data" / "guard" / "blind348",
          "three-hundred-and-fiftieth round": HERE / "data" / "guard" / "blind350",
          "three-hundred-and-fifty-first round": HERE / "data" / "guard" / "blind351",
          "three-hundred-and-fifty-third round": HERE / "data" / "guard" / "blind353",
          "three-hundred-and-fifty-fourth round": HERE / "data" / "guard" / "blind354",
          "three-hundred-and-fifty-sixth round": HERE / "data" / "guard" / "blind356",
          "three-hundred-and-fifty-eighth round": HERE / "data" / "guard" / "blind358",
          "three-hundred-and-fifty-ninth round": HERE / "data" / "guard" / "blind359",
          "three-hundred-and-sixty-first round": HERE / "data" / "guard" / "blind361",
          "three-hundred-and-sixty-second round": HERE / "data" / "guard" / "blind362",
          "three-hundred-and-sixty-fourth round": HERE / "data" / "guard" / "blind364",
          "three-hundred-and-sixty-sixth round": HERE / "data" / "guard" / "blind366",
          "three-hundred-and-sixty-seventh round": HERE / "data" / "guard" / "blind367",
          "three-hundred-and-sixty-ninth round": HERE / "data" / "guard" / "blind369",
          "three-hundred-and-seventieth round": HERE / "data" / "guard" / "blind370",
          "three-hundred-and-seventy-second round": HERE / "data" / "guard" / "blind372",
          "three-hundred-and-seventy-fifth round": HERE / "data" / "guard" / "blind375",
          "three-hundred-and-seventy-eighth round": HERE / "data" / "guard" / "blind378",
          "three-hundred-and-seventy-fourth round": HERE / "data" / "guard" / "blind374",
          "three-hundred-and-seventy-seventh round": HERE / "data" / "guard" / "blind377",
          "three-hundred-and-eighty-sixth round": HERE / "data" / "guard" / "blind386",
          "three-hundred-and-eightieth round": HERE / "data" / "guard" / "blind380",
          "three-hundred-and-eighty-third round": HERE / "data" / "guard" / "blind383",
          "three-hundred-and-eighty-fifth round": HERE / "data" / "guard" / "blind385",
          "three-hundred-and-eighty-second round": HERE / "data" / "guard" / "blind382",
          "three-hundred-and-ninety-third round": HERE / "data" / "guard" / "blind393",
          "three-hundred-and-eighty-eighth round": HERE / "data" / "guard" / "blind388",
          "three-hundred-and-ninetieth round": HERE / "data" / "guard" / "blind390",
          "three-hundred-and-ninety-first round": HERE / "data" / "guard" / "blind391",
          "three-hundred-and-ninety-fourth round": HERE / "data" / "guard" / "blind394",
          "three-hundred-and-ninety-eighth round": HERE / "data" / "guard" / "blind398",
          "four-hundred-and-first round": HERE / "data" / "guard" / "blind401",
          "three-hundred-and-ninety-sixth round": HERE / "data" / "guard" / "blind396",
          "three-hundred-and-ninety-ninth round": HERE / "data" / "guard" / "blind399",
          "four-hundred-and-second round": HERE / "data" / "guard" / "blind402",
          "four-hundred-and-fourth round": HERE / "data" / "guard" / "blind404",
          "four-hundred-and-sixth round": HERE / "data" / "guard" / "blind406",
          "four-hundred-and-seventh round": HERE / "data" / "guard" / "blind407",
          "four-hundred-and-ninth round": HERE / "data" / "guard" / "blind409",
          "four-hundred-and-tenth round": HERE / "data" / "guard" / "blind410",
          "four-hundred-and-twelfth round": HERE / "data" / "guard" / "blind412",
          "four-hundred-and-fourteenth round": HERE / "data" / "guard" / "blind414",
          "four-hundred-and-fifteenth round": HERE / "data" / "guard" / "blind415",
          "four-hundred-and-seventeenth round": HERE / "data" / "guard" / "blind417",
          "four-hundred-and-eighteenth round": HERE / "data" / "guard" / "blind418",
          "four-hundred-and-twentieth round": HERE / "data" / "guard" / "blind420",
          "four-hundred-and-twenty-second round": HERE / "data" / "guard" / "blind422",
          "four-hundred-and-twenty-third round": HERE / "data" / "guard" / "blind423",
          "four-hundred-and-twenty-fifth round": HERE / "data" / "guard" / "blind425",
          "four-hundred-and-twenty-sixth round": HERE / "data" / "guard" / "blind426",
          "four-hundred-and-twenty-eighth round": HERE / "data" / "guard" / "blind428",
          "four-hundred-and-thirtieth round": HERE / "data" / "guard" / "blind430",
          "four-hundred-and-thirty-first round": HERE / "data" / "guard" / "blind431",
          "four-hundred-and-thirty-third round": HERE / "data" / "guard" / "blind433",
          "four-hundred-and-thirty-fourth round": HERE / "data" / "guard" / "blind434",
          "four-hundred-and-forty-first round": HERE / "data" / "guard" / "blind441",
          "four-hundred-and-thirty-sixth round": HERE / "data" / "guard" / "blind436",
          "four-hundred-and-forty-second round": HERE / "data" / "guard" / "blind442",
          "four-hundred-and-thirty-eighth round": HERE / "data" / "guard" / "blind438",
          "four-hundred-and-thirty-ninth round": HERE / "data" / "guard" / "blind439",
          "four-hundred-and-forty-fourth round": HERE / "data" / "guard" / "blind444",
          "four-hundred-and-forty-sixth round": HERE / "data" / "guard" / "blind446",
          "four-hundred-and-forty-seventh round": HERE / "data" / "guard" / "blind447",
          "four-hundred-and-forty-ninth round": HERE / "data" / "guard" / "blind449",
          "four-hundred-and-fiftieth round": HERE / "data" / "guard" / "blind450",
          "four-hundred-and-fifty-second round": HERE / "data" / "guard" / "blind452",
          "four-hundred-and-fifty-fourth round": HERE / "data" / "guard" / "blind454",
          "four-hundred-and-fifty-fifth round": HERE / "data" / "guard" / "blind455",
          "four-hundred-and-fifty-seventh round": HERE / "data" / "guard" / "blind457",
          "four-hundred-and-fifty-eighth round": HERE / "data" / "guard" / "blind458",
          "four-hundred-and-sixtieth round": HERE / "data" / "guard" / "blind460",
          "four-hundred-and-sixty-second round": HERE / "data" / "guard" / "blind462",
          "four-hundred-and-sixty-third round": HERE / "data" / "guard" / "blind463",
          "four-hundred-and-sixty-fifth round": HERE / "data" / "guard" / "blind465",
          "four-hundred-and-sixty-sixth round": HERE / "data" / "guard" / "blind466",
          "four-hundred-and-sixty-eighth round": HERE / "data" / "guard" / "blind468",
          "four-hundred-and-seventieth round": HERE / "data" / "guard" / "blind470",
          "four-hundred-and-seventy-first round": HERE / "data" / "guard" / "blind471",
          "four-hundred-and-seventy-third round": HERE / "data" / "guard" / "blind473",
          "four-hundred-and-seventy-fourth round": HERE / "data" / "guard" / "blind474",
          "sixty-ninth round": HERE / "data" / "guard" / "blind69",
          "seventy-second round": HERE / "data" / "guard" / "blind72",
          "seventy-fifth round": HERE / "data" / "guard" / "blind75",
          "seventy-eighth round": HERE / "data" / "guard" / "blind78",
          "eighty-first round": HERE / "data" / "guard" / "blind81",
          "eighty-sixth round": HERE / "data" / "guard" / "blind86",
          "eighty-ninth round": HERE / "data" / "guard" / "blind89",
          "ninety-third round": HERE / "data" / "guard" / "blind93",
          "ninety-sixth round": HERE / "data" / "guard" / "blind96",
          "ninety-ninth round": HERE / "data" / "guard" / "blind99",
          "hundred-and-first round": HERE / "data" / "guard" / "blind101",
          "hundred-and-fourth round": HERE / "data" / "guard" / "blind104",
          "hundred-and-seventh round": HERE / "data" / "guard" / "blind107",
          "hundred-and-ninth round": HERE / "data" / "guard" / "blind109",
          "hundred-and-twelfth round": HERE / "data" / "guard" / "blind112",
          "hundred-and-fifteenth round": HERE / "data" / "guard" / "blind115",
          "hundred-and-seventeenth round": HERE / "data" / "guard" / "blind117",
          "hundred-and-twentieth round": HERE / "data" / "guard" / "blind120",
          "hundred-and-twenty-third round": HERE / "data" / "guard" / "blind123",
          "hundred-and-twenty-fifth round": HERE / "data" / "guard" / "blind125",
          "hundred-and-twenty-eighth round": HERE / "data" / "guard" / "blind128",
          "hundred-and-thirty-first round": HERE / "data" / "guard" / "blind131",
          "hundred-and-thirty-third round": HERE / "data" / "guard" / "blind133",
          "hundred-and-thirty-sixth round": HERE / "data" / "guard" / "blind136",
          "hundred-and-thirty-ninth round": HERE / "data" / "guard" / "blind139",
          "hundred-and-forty-first round": HERE / "data" / "guard" / "blind141",
          "hundred-and-forty-fourth round": HERE / "data" / "guard" / "blind144",
          "hundred-and-forty-seventh round": HERE / "data" / "guard" / "blind147",
          "hundred-and-forty-ninth round": HERE / "data" / "guard" / "blind149",
          "hundred-and-fifty-second round": HERE / "data" / "guard" / "blind152",
          "hundred-and-fifty-fifth round": HERE / "data" / "guard" / "blind155",
          "hundred-and-fifty-seventh round": HERE / "data" / "guard" / "blind157",
          "hundred-and-sixtieth round": HERE / "data" / "guard" / "blind160",
          "hundred-and-sixty-third round": HERE / "data" / "guard" / "blind163",
          "hundred-and-sixty-fifth round": HERE / "data" / "guard" / "blind165",
          "hundred-and-sixty-eighth round": HERE / "data" / "guard" / "blind168",
          "hundred-and-seventy-first round": HERE / "data" / "guard" / "blind171",
          "hundred-and-seventy-third round": HERE / "data" / "guard" / "blind173",
          "hundred-and-seventy-sixth round": HERE / "data" / "guard" / "blind176",
          "hundred-and-seventy-ninth round": HERE / "data" / "guard" / "blind179",
          "hundred-and-eighty-first round": HERE / "data" / "guard" / "blind181",
          "hundred-and-eighty-fourth round": HERE / "data" / "guard" / "blind184",
          "hundred-and-eighty-seventh round": HERE / "data" / "guard" / "blind187",
          "hundred-and-eighty-ninth round": HERE / "data" / "guard" / "blind189",
          "hundred-and-ninety-second round": HERE / "data" / "guard" / "blind192",
          "hundred-and-ninety-fifth round": HERE / "data" / "guard" / "blind195",
          "hundred-and-ninety-seventh round": HERE / "data" / "guard" / "blind197",
          "two-hundredth round": HERE / "data" / "guard" / "blind200",
          "two-hundred-and-third round": HERE / "data" / "guard" / "blind203",
          "two-hundred-and-fifth round": HERE / "data" / "guard" / "blind205",
          "two-hundred-and-eighth round": HERE / "data" / "guard" / "blind208",
          "two-hundred-and-eleventh round": HERE / "data" / "guard" / "blind211",
          "two-hundred-and-thirteenth round": HERE / "data" / "guard" / "blind213",
          "two-hundred-and-sixteenth round": HERE / "data" / "guard" / "blind216",
          "two-hundred-and-nineteenth round": HERE / "data" / "guard" / "blind219",
          "two-hundred-and-twenty-first round": HERE / "data" / "guard" / "blind221",
          "two-hundred-and-twenty-fourth round": HERE / "data" / "guard" / "blind224",
          "two-hundred-and-twenty-seventh round": HERE / "data" / "guard" / "blind227",
          "two-hundred-and-twenty-ninth round": HERE / "data" / "guard" / "blind229",
          "two-hundred-and-thirty-second round": HERE / "data" / "guard" / "blind232",
          "two-hundred-and-thirty-fifth round": HERE / "data" / "guard" / "blind235",
          "two-hundred-and-thirty-seventh round": HERE / "data" / "guard" / "blind237",
          "two-hundred-and-fortieth round": HERE / "data" / "guard" / "blind240",
          "two-hundred-and-forty-third round": HERE / "data" / "guard" / "blind243",
          "two-hundred-and-forty-fifth round": HERE / "data" / "guard" / "blind245",
          "two-hundred-and-forty-eighth round": HERE / "data" / "guard" / "blind248",
          "two-hundred-and-fifty-first round": HERE / "data" / "guard" / "blind251",
          "two-hundred-and-fifty-third round": HERE / "data" / "guard" / "blind253",
          "two-hundred-and-fifty-sixth round": HERE / "data" / "guard" / "blind256",
          "two-hundred-and-fifty-ninth round": HERE / "data" / "guard" / "blind259",
          "two-hundred-and-sixty-first round": HERE / "data" / "guard" / "blind261",
          "two-hundred-and-sixty-fourth round": HERE / "data" / "guard" / "blind264",
          "two-hundred-and-sixty-seventh round": HERE / "data" / "guard" / "blind267",
          "two-hundred-and-sixty-ninth round": HERE / "data" / "guard" / "blind269",
          "two-hundred-and-seventy-second round": HERE / "data" / "guard" / "blind272",
          "two-hundred-and-seventy-fifth round": HERE / "data" / "guard" / "blind275",
          "two-hundred-and-seventy-seventh round": HERE / "data" / "guard" / "blind277",
          "two-hundred-and-eightieth round": HERE / "data" / "guard" / "blind280",
          "two-hundred-and-eighty-third round": HERE / "data" / "guard" / "blind283",
          "two-hundred-and-eighty-fifth round": HERE / "data" / "guard" / "blind285",
          "two-hundred-and-eighty-eighth round": HERE / "data" / "guard" / "blind288",
          "two-hundred-and-ninety-first round": HERE / "data" / "guard" / "blind291",
          "two-hundred-and-ninety-third round": HERE / "data" / "guard" / "blind293",
          "two-hundred-and-ninety-sixth round": HERE / "data" / "guard" / "blind296",
          "two-hundred-and-ninety-ninth round": HERE / "data" / "guard" / "blind299",
          "three-hundred-and-first round": HERE / "data" / "guard" / "blind301",
          "three-hundred-and-fourth round": HERE / "data" / "guard" / "blind304",
          "three-hundred-and-seventh round": HERE / "data" / "guard" / "blind307",
          "three-hundred-and-ninth round": HERE / "data" / "guard" / "blind309",
          "three-hundred-and-twelfth round": HERE / "data" / "guard" / "blind312",
          "three-hundred-and-fifteenth round": HERE / "data" / "guard" / "blind315",
          "three-hundred-and-seventeenth round": HERE / "data" / "guard" / "blind317",
          "three-hundred-and-twentieth round": HERE / "data" / "guard" / "blind320",
          "three-hundred-and-twenty-third round": HERE / "data" / "guard" / "blind323",
          "three-hundred-and-twenty-fifth round": HERE / "data" / "guard" / "blind325",
          "three-hundred-and-twenty-eighth round": HERE / "data" / "guard" / "blind328",
          "three-hundred-and-thirty-first round": HERE / "data" / "guard" / "blind331",
          "three-hundred-and-thirty-third round": HERE / "data" / "guard" / "blind333",
          "three-hundred-and-thirty-sixth round": HERE / "data" / "guard" / "blind336",
          "three-hundred-and-thirty-ninth round": HERE / "data" / "guard" / "blind339",
          "three-hundred-and-forty-first round": HERE / "data" / "guard" / "blind341",
          "three-hundred-and-forty-fourth round": HERE / "data" / "guard" / "blind344",
          "three-hundred-and-forty-seventh round": HERE / "data" / "guard" / "blind347",
          "three-hundred-and-forty-ninth round": HERE / "data" / "guard" / "blind349",
          "three-hundred-and-fifty-second round": HERE / "data" / "guard" / "blind352",
          "three-hundred-and-fifty-fifth round": HERE / "data" / "guard" / "blind355",
          "three-hundred-and-fifty-seventh round": HERE / "data" / "guard" / "blind357",
          "three-hundred-and-sixtieth round": HERE / "data" / "guard" / "blind360",
          "three-hundred-and-sixty-third round": HERE / "data" / "guard" / "blind363",
          "three-hundred-and-sixty-fifth round": HERE / "data" / "guard" / "blind365",
          "three-hundred-and-sixty-eighth round": HERE / "data" / "guard" / "blind368",
          "three-hundred-and-seventy-first round": HERE / "data" / "guard" / "blind371",
          "three-hundred-and-seventy-third round": HERE / "data" / "guard" / "blind373",
          "three-hundred-and-seventy-sixth round": HERE / "data" / "guard" / "blind376",
          "three-hundred-and-seventy-ninth round": HERE / "data" / "guard" / "blind379",
          "three-hundred-and-eighty-first round": HERE / "data" / "guard" / "blind381",
          "three-hundred-and-eighty-fourth round": HERE / "data" / "guard" / "blind384",
          "three-hundred-and-eighty-seventh round": HERE / "data" / "guard" / "blind387",
          "three-hundred-and-eighty-ninth round": HERE / "data" / "guard" / "blind389",
          "three-hundred-and-ninety-second round": HERE / "data" / "guard" / "blind392",
          "three-hundred-and-ninety-fifth round": HERE / "data" / "guard" / "blind395",
          "three-hundred-and-ninety-seventh round": HERE / "data" / "guard" / "blind397",
          "four-hundredth round": HERE / "data" / "guard" / "blind400",
          "four-hundred-and-third round": HERE / "data" / "guard" / "blind403",
          "four-hundred-and-fifth round": HERE / "data" / "guard" / "blind405",
          "four-hundred-and-eighth round": HERE / "data" / "guard" / "blind408",
          "four-hundred-and-eleventh round": HERE / "data" / "guard" / "blind411",
          "four-hundred-and-thirteenth round": HERE / "data" / "guard" / "blind413",
          "four-hundred-and-sixteenth round": HERE / "data" / "guard" / "blind416",
          "four-hundred-and-nineteenth round": HERE / "data" / "guard" / "blind419",
          "four-hundred-and-twenty-first round": HERE / "data" / "guard" / "blind421",
          "four-hundred-and-twenty-fourth round": HERE / "data" / "guard" / "blind424",
          "four-hundred-and-twenty-seventh round": HERE / "data" / "guard" / "blind427",
          "four-hundred-and-twenty-ninth round": HERE / "data" / "guard" / "blind429",
          "four-hundred-and-thirty-second round": HERE / "data" / "guard" / "blind432",
          "four-hundred-and-thirty-fifth round": HERE / "data" / "guard" / "blind435",
          "four-hundred-and-fortieth round": HERE / "data" / "guard" / "blind440",
          "four-hundred-and-thirty-seventh round": HERE / "data" / "guard" / "blind437",
          "four-hundred-and-forty-third round": HERE / "data" / "guard" / "blind443",
          "four-hundred-and-forty-fifth round": HERE / "data" / "guard" / "blind445",
          "four-hundred-and-fifty-first round": HERE / "data" / "guard" / "blind451",
          "four-hundred-and-forty-eighth round": HERE / "data" / "guard" / "blind448",
          "four-hundred-and-fifty-third round": HERE / "data" / "guard" / "blind453",
          "four-hundred-and-fifty-ninth round": HERE / "data" / "guard" / "blind459",
          "four-hundred-and-fifty-sixth round": HERE / "data" / "guard" / "blind456",
          "four-hundred-and-sixty-first round": HERE / "data" / "guard" / "blind461",
          "four-hundred-and-sixty-fourth round": HERE / "data" / "guard" / "blind464",
          "four-hundred-and-sixty-seventh round": HERE / "data" / "guard" / "blind467",
          "four-hundred-and-sixty-ninth round": HERE / "data" / "guard" / "blind469",
          "four-hundred-and-seventy-second round": HERE / "data" / "guard" / "blind472",
          "four-hundred-and-seventy-fifth round": HERE / "data" / "guard" / "blind475",
          "four-hundred-and-seventy-sixth round": HERE / "data" / "guard" / "blind476",
          "four-hundred-and-seventy-seventh round": HERE / "data" / "guard" / "blind477",
          "four-hundred-and-seventy-eighth round": HERE / "data" / "guard" / "blind478",
          "four-hundred-and-seventy-ninth round": HERE / "data" / "guard" / "blind479",
          "four-hundred-and-eightieth round": HERE / "data" / "guard" / "blind480",
          "four-hundred-and-eighty-first round": HERE / "data" / "guard" / "blind481",
          "four-hundred-and-eighty-second round": HERE / "data" / "guard" / "blind482",
          "four-hundred-and-eighty-third round": HERE / "data" / "guard" / "blind483"}


@dataclass
class Record:
    category: str
    text: str
    values: list[tuple[str, str]] = field(default_factory=list)  # (class or "", value)


def records(name: str, data: Path = DATA) -> list[Record]:
    """The records of `data/name.txt`."""
    out = []
    for chunk in texts(name, data):
        lines = chunk.strip("\n").split("\n")
        category = lines[0][3:].strip() if lines[0].startswith("## ") else ""
        body = [ln for ln in lines[1 if category else 0:] if not ln.startswith("@@ ")]
        values = []
        for ln in lines:
            if ln.startswith("@@ "):
                rest = ln[3:]
                if name.startswith("pii"):
                    cls, _, value = rest.partition(" ")
                    values.append((cls, value))
                else:
                    values.append(("", rest))
        out.append(Record(category, "\n".join(body), values))
    return out


def _spans(text: str, value: str) -> list[tuple[int, int]]:
    """Every place `value` is written in `text`."""
    out, start = [], text.find(value)
    if start < 0:
        raise ValueError(f"value {value!r} is not in its text")
    while start >= 0:
        out.append((start, start + len(value)))
        start = text.find(value, start + 1)
    return out


def _covered(spans: list[tuple[int, int]], places: list[tuple[int, int]]) -> bool:
    """Some span overlaps some place."""
    return any(s < end and start < e for s, e in spans for start, end in places)


def secrets(guard: Guard, show: bool, baseline: bool, data: Path = DATA,
            name: str = "secrets") -> dict[str, int]:
    pos, neg = records("secrets_positive", data), records("secrets_negative", data)
    missed: Counter[str] = Counter()
    per: Counter[str] = Counter()
    for r in pos:
        spans = [(f.start, f.end) for f in guard.scan(r.text) if f.cls == "secret"]
        per[r.category] += 1
        if not _covered(spans, _spans(r.text, r.values[0][1])):
            missed[r.category] += 1
            if show:
                print(f"  missed [{r.category}] {r.values[0][1]!r}: {r.text[:160]!r}")
    flagged = []
    for r in neg:
        found = [f for f in guard.scan(r.text) if f.cls == "secret"]
        if found:
            flagged.append(r)
            if show:
                values = [r.text[f.start:f.end][:40] for f in found]
                print(f"  flagged [{r.category}] {values}: {r.text[:160]!r}")
    n_missed = sum(missed.values())
    print(f"{name}: found {len(pos) - n_missed} of {len(pos)} "
          f"({(len(pos) - n_missed) / len(pos):.3f}); negatives flagged {len(flagged)} of "
          f"{len(neg)} ({len(flagged) / len(neg):.3f})")
    if missed:
        print("  missed by category: " + ", ".join(
            f"{c} {missed[c]}/{per[c]}" for c in sorted(missed)))
    if baseline:
        from guard_eval import detect_secrets_hits

        ds_pos = detect_secrets_hits([r.text for r in pos])
        ds_neg = detect_secrets_hits([r.text for r in neg])
        print(f"detect-secrets 1.5 (a text counts when anything is reported in it): found "
              f"{sum(ds_pos)} of {len(pos)} ({sum(ds_pos) / len(pos):.3f}); negatives flagged "
              f"{sum(ds_neg)} of {len(neg)} ({sum(ds_neg) / len(neg):.3f})")
    return {"found": len(pos) - n_missed, "positives": len(pos), "flagged": len(flagged),
            "negatives": len(neg)}


def personal(guard: Guard, show: bool, data: Path = DATA,
             name: str = "personal data") -> dict[str, int]:
    pos, neg = records("pii_positive", data), records("pii_negative", data)
    total: Counter[str] = Counter()
    found: Counter[str] = Counter()
    extra = 0  # findings in positive texts that overlap no listed value
    reported = 0
    for r in pos:
        hits = [f for f in guard.scan(r.text) if f.cls == "personal"]
        listed = [place for _, v in r.values for place in _spans(r.text, v)]
        for cls, value in r.values:
            total[cls] += 1
            places = _spans(r.text, value)
            if _covered([(f.start, f.end) for f in hits if f.detector == cls], places):
                found[cls] += 1
            elif show:
                got = [(f.detector, r.text[f.start:f.end]) for f in hits
                       if _covered([(f.start, f.end)], places)]
                print(f"  missed {cls} {value!r} (found {got}) [{r.category}]: "
                      f"{r.text[:140]!r}")
        for f in hits:
            reported += 1
            if not _covered([(f.start, f.end)], listed):
                extra += 1
                if show:
                    print(f"  extra {f.detector} {r.text[f.start:f.end]!r} [{r.category}]")
    flagged = 0
    for r in neg:
        hits = [f for f in guard.scan(r.text) if f.cls == "personal"]
        if hits:
            flagged += 1
            if show:
                print(f"  flagged [{r.category}] "
                      f"{[(f.detector, r.text[f.start:f.end]) for f in hits]}")
    n, k = sum(total.values()), sum(found.values())
    print(f"{name}: found {k} of {n} values ({k / n:.3f}); findings on no listed value "
          f"{extra} of {reported}; negatives flagged {flagged} of {len(neg)} "
          f"({flagged / len(neg):.3f})")
    print("  by class: " + ", ".join(f"{c} {found[c]}/{total[c]}" for c in sorted(total)))
    return {"found": k, "values": n, "flagged": flagged, "negatives": len(neg),
            "extra": extra}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--show", action="store_true", help="print what was missed or flagged")
    ap.add_argument("--baseline", action="store_true", help="also run detect-secrets")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = ap.parse_args()
    guard = Guard.from_config(GuardConfig())
    out: dict[str, dict[str, int]] = {}
    with contextlib.redirect_stdout(io.StringIO()) if args.json else contextlib.nullcontext():
        for name, data in ROUNDS.items():
            out[name] = secrets(guard, args.show, args.baseline, data, f"secrets, {name}")
        out["personal"] = personal(guard, args.show)
        for name, data in ROUNDS.items():
            if data != DATA and (data / "pii_positive.txt").exists():
                out[f"personal, {name}"] = personal(guard, args.show, data,
                                                    f"personal data, {name}")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
