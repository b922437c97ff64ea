#!/usr/bin/env python3
"""The demo migration: a private Dovecot with sample mail -> Maildir.

Uses the test harness (tests/harness) to run Dovecot, so the demo and the
tests exercise the same setup. Exit status is godwit's (0 = all migrated).
"""

import argparse
import json
import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO, "tests"))

from harness import seed, verify  # noqa: E402
from harness.dovecot import Dovecot  # noqa: E402

USERS = {"alice": "Alice-pw-1", "bob": "Bob-pw-2", "carol": "Carol-pw-3"}


def write_profile(out, dv):
    with open(os.path.join(out, "users.csv"), "w") as f:
        # Microsoft's format. Passwords stay empty: the admin (master) login is used.
        f.write("EmailAddress,UserName,Password\n")
        for user in USERS:
            f.write("%s@example.org,%s,\n" % (user, user))
    profile = os.path.join(out, "demo.yaml")
    with open(profile, "w") as f:
        f.write(f"""\
# Written by scripts/demo. A private Dovecot on 127.0.0.1 -> Maildir.
version: 1
state: ./godwit-state.db
report: ./reports
pipelines:
  - name: demo
    source:
      plugin: imap
      host: {dv.host}
      port: {dv.port_tls}
      tls: implicit
      ca_file: {dv.ca_file}              # the demo server's own CA: verified TLS
      auth: plain
      admin_user: {dv.master_user}       # master user: no user passwords needed
      admin_password: ${{GODWIT_DEMO_MASTER_PASSWORD}}
    sink:
      plugin: maildir
      path: ./maildir/{{email}}
    mailboxes:
      csv: users.csv
""")
    return profile


def run_godwit(godwit, profile, env):
    print("$ godwit run %s" % os.path.relpath(profile), flush=True)
    return subprocess.run([godwit, "run", profile], env=env).returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--godwit", required=True)
    ap.add_argument("--out", default="demo-run")
    ap.add_argument("--messages", type=int, default=200, help="generated messages per user")
    args = ap.parse_args()

    godwit = os.path.abspath(args.godwit)
    out = os.path.abspath(args.out)
    if os.path.exists(out):
        subprocess.run(["rm", "-rf", out], check=True)
    os.makedirs(out)

    with Dovecot(users=USERS) as dv:
        print("demo: private Dovecot on %s (TLS port %d)" % (dv.host, dv.port_tls))
        manifests = {}
        for user in USERS:
            manifests[user] = seed.seed_user(dv, user, generated=args.messages,
                                             corpus=False).manifest
        profile = write_profile(out, dv)
        env = dict(os.environ, GODWIT_DEMO_MASTER_PASSWORD=dv.master_password)

        code = run_godwit(godwit, profile, env)
        if code != 0:
            print("demo: godwit exited with %d" % code)
            return code

        print("\ndemo: verifying every message byte for byte against the server")
        for user, expected in manifests.items():
            root = os.path.join(out, "maildir", "%s@example.org" % user)
            actual = verify.read_sink_maildir(root)
            diffs = verify.compare(expected, actual)
            if diffs:
                print("demo: %s differs:\n%s" % (user, verify.format_differences(diffs)))
                return 1
            print("demo: %s: %s, identical" % (user, expected.summary()))

        print("\ndemo: running again: an incremental sync copies nothing new")
        code = run_godwit(godwit, profile, env)
        print("\ndemo: done. Maildir trees in %s/maildir, reports in %s/reports"
              % (os.path.relpath(out), os.path.relpath(out)))
        return code


if __name__ == "__main__":
    sys.exit(main())
