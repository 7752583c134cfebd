#!/usr/bin/env python3
"""Peak memory, time and output sizes of `plan` on generated local tenants.

One source user keeps CONTACTS contacts in its "Shared" group; the sync copies
them to every user of the /Dest org unit (DESTINATIONS users). Each size is
measured on a first sync (every destination gets the same creates), with
`/usr/bin/time -v`:

    cargo build --release
    benches/plan_memory.py target/release/contact-sync 500 1000 2000 4000

Options: --contacts N (default 1000), --keep DIR (keep the tenants there).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

SYNC = """apiVersion: contact-sync/v1
kind: ContactSync
metadata: {name: bulk}
spec:
  source: {user: source@example.com, contactGroup: Shared}
  destinations: {orgUnits: [/Dest]}
"""

WORKSPACE = """apiVersion: contact-sync/v1
kind: Workspace
metadata: {name: bench}
spec: {backend: local, local: {path: ../tenant.yaml}}
"""


def tenant(contacts: int, destinations: int) -> str:
    out = ["domains: [example.com]", "users:"]
    out += [
        "  - primaryEmail: admin@example.com",
        "    orgUnitPath: /IT",
        "  - primaryEmail: source@example.com",
        "    orgUnitPath: /Sales",
        "    contactGroups: [{name: Shared}]",
        "    contacts:",
    ]
    for i in range(contacts):
        out += [
            f"      - names: [{{givenName: Contact, familyName: '{i:05}'}}]",
            f"        emailAddresses: [{{value: c{i}@partners.test, type: work}}]",
            f"        phoneNumbers: [{{value: '+1 555 {i:04}', type: work}}]",
            "        organizations: [{name: Partner Inc, title: Buyer}]",
            "        contactGroups: [Shared]",
        ]
    for i in range(destinations):
        out += [f"  - primaryEmail: d{i:04}@example.com", "    orgUnitPath: /Dest"]
    return "\n".join(out) + "\n"


def make(root: str, contacts: int, destinations: int) -> str:
    d = os.path.join(root, f"d{destinations}")
    os.makedirs(os.path.join(d, "manifests"), exist_ok=True)
    with open(os.path.join(d, "tenant.yaml"), "w") as f:
        f.write(tenant(contacts, destinations))
    with open(os.path.join(d, "manifests", "sync.yaml"), "w") as f:
        f.write(SYNC)
    with open(os.path.join(d, "manifests", "workspace.yaml"), "w") as f:
        f.write(WORKSPACE)
    return d


def measure(args: list[str], stdout_path: str) -> tuple[float, int]:
    """Runs `args` under /usr/bin/time -v; returns (seconds, peak RSS in KiB)."""
    with open(stdout_path, "wb") as out:
        start = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-v", *args], stdout=out, stderr=subprocess.PIPE)
        elapsed = time.monotonic() - start
    err = p.stderr.decode()
    if p.returncode not in (0, 2):
        sys.exit(f"{' '.join(args)} exited {p.returncode}:\n{err}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
    return elapsed, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("destinations", type=int, nargs="+")
    ap.add_argument("--contacts", type=int, default=1000)
    ap.add_argument("--keep")
    a = ap.parse_args()
    root = a.keep or tempfile.mkdtemp(prefix="cs-plan-memory-")
    mib = lambda kib: f"{kib / 1024:,.0f} MiB"
    def size(path: str) -> str:
        n = os.path.getsize(path)
        return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n / 2**10:,.0f} KiB"

    print(f"{a.contacts} contacts, first sync, local backend: {a.binary}\n")
    print(
        "| destinations | text plan | text: time, peak RSS | JSON plan | JSON: time, peak RSS "
        "| plan --out file | --out: time, peak RSS |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    try:
        for n in a.destinations:
            d = make(root, a.contacts, n)
            manifests = os.path.join(d, "manifests")
            text, json, saved = (os.path.join(d, f) for f in ("plan.txt", "plan.json.out", "saved.json"))
            t_text, r_text = measure([a.binary, "plan", manifests], text)
            t_json, r_json = measure([a.binary, "plan", manifests, "--format", "json"], json)
            t_out, r_out = measure([a.binary, "plan", manifests, "--out", saved], os.devnull)
            print(
                f"| {n:,} | {size(text)} | {t_text:.1f} s, {mib(r_text)} | {size(json)} "
                f"| {t_json:.1f} s, {mib(r_json)} | {size(saved)} | {t_out:.1f} s, {mib(r_out)} |",
                flush=True,
            )
            if not a.keep:
                shutil.rmtree(d)
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
