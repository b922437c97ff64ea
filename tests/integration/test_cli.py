"""The godwit command line, offline: plugins, check, exit codes, secrets.

Runs the built executable as a user would. Needs no server.
"""

import os
import subprocess
import tempfile
import textwrap
import unittest

GODWIT = os.environ.get("GODWIT_BIN", "godwit")
SOURCE_DIR = os.environ.get(
    "GODWIT_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
)
EXAMPLES = os.path.join(SOURCE_DIR, "config", "examples")

# Values the examples need from the environment; unique strings so that a leak
# into any output is detectable.
EXAMPLE_ENV = {
    "CAROL_PASSWORD": "carol-SECRET-4d1f",
    "DOVECOT_MASTER_PASSWORD": "master-SECRET-9a7c",
}


def godwit(*args, env=None, cwd=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [GODWIT, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=60
    )


class Plugins(unittest.TestCase):
    def test_lists_built_plugins_with_kind_and_version(self):
        r = godwit("plugins")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = {tuple(l.split()[:3]) for l in r.stdout.splitlines()}
        self.assertIn(("source", "imap", "0.1.0"), lines)
        self.assertIn(("sink", "maildir", "1.0.0"), lines)
        self.assertIn("imap", {l[1] for l in lines if l[0] == "sink"})
        # Test plugins live in their own folder and are never listed.
        self.assertNotIn("testgood", r.stdout)

    def test_plugin_options_are_described(self):
        r = godwit("plugins", "imap")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("source plugin imap", r.stdout)
        self.assertRegex(r.stdout, r"\n  host +string +required\n")
        self.assertRegex(r.stdout, r"\n  tls +enum +default: implicit\n")
        self.assertIn("one of: implicit starttls none", r.stdout)

    def test_unknown_plugin_says_where_it_looked(self):
        r = godwit("plugins", "nosuch")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no plugin named 'nosuch'; looked in:", r.stderr)


class Check(unittest.TestCase):
    def test_every_example_prints_its_plan(self):
        examples = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".yaml"))
        self.assertGreaterEqual(len(examples), 2)
        for name in examples:
            with self.subTest(example=name):
                r = godwit("check", os.path.join(EXAMPLES, name), env=EXAMPLE_ENV)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("profile is valid", r.stdout)
                self.assertRegex(r.stdout, r"plan: \d+ pipelines?, \d+ mailbox")
                for secret in EXAMPLE_ENV.values():
                    self.assertNotIn(secret, r.stdout + r.stderr)

    def test_limits_are_printed(self):
        r = godwit("check", os.path.join(EXAMPLES, "imap-to-maildir.yaml"), env=EXAMPLE_ENV)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"limits: mailboxes_in_parallel 4, source_connections 8, "
                                   r"sink_connections 8, connections_per_mailbox 2, ")

    def test_master_password_is_masked(self):
        r = godwit(
            "check", os.path.join(EXAMPLES, "dovecot-master-to-maildir.yaml"), env=EXAMPLE_ENV
        )
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("admin_password: ***", r.stdout)

    def test_missing_secret_variable_is_a_config_error(self):
        env = {k: v for k, v in os.environ.items() if k != "DOVECOT_MASTER_PASSWORD"}
        r = subprocess.run(
            [GODWIT, "check", os.path.join(EXAMPLES, "dovecot-master-to-maildir.yaml")],
            capture_output=True, text=True, env=env, timeout=60,
        )
        self.assertEqual(r.returncode, 2)
        self.assertIn("DOVECOT_MASTER_PASSWORD", r.stderr)
        self.assertIn("nothing was done", r.stderr)


class ProfileErrors(unittest.TestCase):
    def write(self, directory, text):
        path = os.path.join(directory, "profile.yaml")
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return path

    def test_unknown_source_key_names_place_and_valid_keys(self):
        with tempfile.TemporaryDirectory() as d:
            path = self.write(d, """\
                version: 1
                pipelines:
                  - name: p
                    source:
                      plugin: imap
                      host: imap.example.org
                      prot: 993
                    sink:
                      plugin: maildir
                      path: ./out/{email}
                    mailboxes:
                      list: [{email: a@example.org, password: pw-12345}]
                """)
            r = godwit("check", path)
            self.assertEqual(r.returncode, 2)
            self.assertIn(
                f"{path}:7:7: error: pipelines[0].source: unknown key 'prot' "
                "(did you mean 'port'?); valid keys: host, port, tls,", r.stderr)

    def test_source_plugin_used_as_sink(self):
        with tempfile.TemporaryDirectory() as d:
            path = self.write(d, """\
                version: 1
                pipelines:
                  - name: p
                    source: {plugin: maildir, path: x}
                    sink: {plugin: maildir, path: y}
                    mailboxes:
                      list: [{email: a@example.org}]
                """)
            r = godwit("check", path)
            self.assertEqual(r.returncode, 2)
            self.assertIn(
                f"{path}:4:13: error: pipelines[0].source.plugin: 'maildir' is a sink plugin "
                "and cannot be used as a source", r.stderr)

    def test_every_error_is_reported_at_once(self):
        with tempfile.TemporaryDirectory() as d:
            path = self.write(d, """\
                version: 1
                pipelines:
                  - name: p
                    source: {plugin: imap, host: h, tls: maybe}
                    sink: {plugin: maildir, layout: flat}
                    mailboxes:
                      list: [{email: a@example.org}]
                """)
            r = godwit("check", path)
            self.assertEqual(r.returncode, 2)
            errors = [l for l in r.stderr.splitlines() if ": error: " in l]
            self.assertEqual(len(errors), 3, r.stderr)
            self.assertIn("pipelines[0].source.tls: ", errors[0])
            self.assertIn("3 errors, nothing was done", r.stderr)

    def test_bad_csv_row_names_its_line_and_the_rest_is_kept(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "users.csv"), "w") as f:
                f.write("EmailAddress,UserName,Password\n"
                        "a@example.org,a,pw-aaaa\n"
                        "not-an-address,b,pw-bbbb\n"
                        "c@example.org,c,pw-cccc\n")
            path = self.write(d, """\
                version: 1
                pipelines:
                  - name: p
                    source: {plugin: imap, host: h}
                    sink: {plugin: maildir, path: "./out/{email}"}
                    mailboxes: {csv: users.csv}
                """)
            r = godwit("check", path)
            # A bad row is reported with its line and is an error for check.
            self.assertIn(os.path.join(d, "users.csv") + ":3:1: error:", r.stderr)
            self.assertEqual(r.returncode, 2)


class LargeMailboxList(unittest.TestCase):
    write = ProfileErrors.write

    def test_plan_shows_the_first_mailboxes_and_counts_the_rest(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "users.csv"), "w") as f:
                f.write("EmailAddress,UserName,Password\n")
                for i in range(25):
                    f.write("u%d@example.org,u%d,pw-%05d\n" % (i, i, i))
            path = self.write(d, """\
                version: 1
                pipelines:
                  - name: p
                    source: {plugin: imap, host: h}
                    sink: {plugin: maildir, path: "./out/{email}"}
                    mailboxes: {csv: users.csv}
                """)
            r = godwit("check", path)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("  mailboxes: 25 (csv: %s)\n    u0@example.org\n"
                          % os.path.join(d, "users.csv"), r.stdout)
            self.assertIn("    u19@example.org\n    ... and 5 more\n", r.stdout)
            self.assertNotIn("u20@example.org", r.stdout)
            self.assertIn("plan: 1 pipeline, 25 mailboxes", r.stdout)


class Usage(unittest.TestCase):
    def test_version(self):
        r = godwit("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^godwit \d+\.\d+\.\d+ \(plugin ABI 1\.5\)\n$")

    def test_help_documents_exit_codes(self):
        r = godwit("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("Exit codes: 0 success, 1 partial failure", r.stdout)

    def test_unknown_command_and_option(self):
        self.assertEqual(godwit("frobnicate").returncode, 2)
        r = godwit("--frob", "check", "x.yaml")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown option '--frob'", r.stderr)

    def test_check_without_profile(self):
        r = godwit("check")
        self.assertEqual(r.returncode, 2)
        self.assertIn("check needs a profile", r.stderr)


if __name__ == "__main__":
    unittest.main()
