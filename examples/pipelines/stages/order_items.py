#!/usr/bin/env python3
"""An exec stage: turns the shop log's lines into one record per item ordered.

brigade writes each record as one JSON line on standard input (here a JSON string: the
source reads plain lines) and reads exactly one answer line per record:

  {"out": V}          one record out: an order of one item
  {"outs": [V, ...]}  many records out (an order of several items), or none
                      ({"outs": []}: comments and heartbeats are dropped)
  {"error": "why"}    the record fails for good and goes to the dead-letter file

See docs/exec.md for the whole protocol.
"""
import json
import sys


def answer(line):
    fields = line.split()
    if len(fields) < 2 or fields[1] != "order":
        return {"outs": []}
    at, _, order, *settings = fields
    values = dict(setting.split("=", 1) for setting in settings)
    total = float(values["total"])  # "total=oops" raises: an error answer below
    items = [
        {"order": int(order), "at": at, "item": item, "order_total": total}
        for item in values["items"].split(",")
    ]
    if len(items) == 1:
        return {"out": items[0]}
    return {"outs": items}


for raw in sys.stdin:
    try:
        reply = answer(json.loads(raw))
    except Exception as error:  # one bad record must not end the process
        print(f"cannot read {raw.strip()}: {error!r}", file=sys.stderr)
        reply = {"error": f"{type(error).__name__}: {error}"}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()  # answer now: a pipe is buffered, and an unflushed answer looks hung
