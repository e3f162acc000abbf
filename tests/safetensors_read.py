#!/usr/bin/env python3
"""An independent reader of the safetensors format (json + struct only), for tests/e2e_export.sh.

  safetensors_read.py FILE list               name, shape (as 'a x b') and dtype of every tensor
  safetensors_read.py FILE meta KEY           a metadata value
  safetensors_read.py FILE dump NAME R0 N     rows [R0, R0 + N) of tensor NAME as %.9g, one a line
  safetensors_read.py FILE dumps DIR          dump for each line "NAME R0 N OUT" of stdin, into DIR/OUT
                                              (one Python start for a whole checkpoint)
  safetensors_read.py FILE forge HOW OUT      FILE with one lie written to OUT (HOW below)
  safetensors_read.py FILE drop PREFIX OUT    FILE without the tensors whose names start with PREFIX
"""
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        sys.exit(f"{path}: header length {n} > file")
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    data = raw[8 + n :]
    meta = header.pop("__metadata__", {})
    spans = []
    for name, t in header.items():
        assert t["dtype"] == "F32", (name, t["dtype"])
        b, e = t["data_offsets"]
        count = 1
        for s in t["shape"]:
            count *= s
        assert 0 <= b <= e <= len(data) and e - b == 4 * count, (name, t)
        spans.append((b, e, name))
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        assert e0 <= b1, (n0, n1)
    return header, meta, data


def write(path, header, meta, data):
    h = dict(header)
    if meta:
        h["__metadata__"] = meta
    text = json.dumps(h).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def dump(header, data, name, r0, n, out):
    t = header[name]
    width = t["shape"][1] if len(t["shape"]) == 2 else 1
    b = t["data_offsets"][0] + 4 * r0 * width
    for (x,) in struct.iter_unpack("<f", data[b : b + 4 * n * width]):
        out.write("%.9g\n" % x)


def main():
    path, what = sys.argv[1], sys.argv[2]
    header, meta, data = read(path)
    if what == "list":
        for name in sorted(header):
            t = header[name]
            print(name, " x ".join(str(s) for s in t["shape"]), t["dtype"])
    elif what == "meta":
        print(meta.get(sys.argv[3], ""))
    elif what == "dump":
        dump(header, data, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.stdout)
    elif what == "dumps":
        for line in sys.stdin:
            name, r0, n, out = line.split()
            with open(f"{sys.argv[3]}/{out}", "w") as f:
                dump(header, data, name, int(r0), int(n), f)
    elif what == "drop":
        prefix, out = sys.argv[3], sys.argv[4]
        write(out, {k: v for k, v in header.items() if not k.startswith(prefix)}, meta, data)
    elif what == "forge":
        how, out = sys.argv[3], sys.argv[4]
        names = sorted(header, key=lambda k: header[k]["data_offsets"][0])
        a, b = header[names[0]], header[names[1]]
        if how == "past_end":  # the last tensor's end past the data
            t = header[names[-1]]
            t["data_offsets"] = [t["data_offsets"][0] + 8, t["data_offsets"][1] + 8]
        elif how == "overlap":  # the second tensor starts inside the first
            n = b["data_offsets"][1] - b["data_offsets"][0]
            b["data_offsets"] = [a["data_offsets"][1] - 4, a["data_offsets"][1] - 4 + n]
        elif how == "size":  # shape x 4 bytes != the offsets' span
            a["shape"] = [a["shape"][0] + 1] + a["shape"][1:]
        elif how == "dtype":
            a["dtype"] = "Q7"
        elif how == "missing":
            del header["rnn.weight_ih_l1"]
        elif how == "hugelen":  # a header length larger than the file
            text = json.dumps(dict(header, __metadata__=meta)).encode()
            with open(out, "wb") as f:
                f.write(struct.pack("<Q", len(text) + len(data) + 100) + text + data)
            return
        write(out, header, meta, data)
    else:
        sys.exit("unknown command " + what)


main()
