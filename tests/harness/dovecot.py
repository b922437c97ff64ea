"""A private Dovecot for integration tests and the demo.

Dovecot (Debian's dovecot-imapd) runs in the foreground as a child of the
test process, with everything under one temporary root: its own base_dir
(so it never touches a system instance), state_dir, log file, config file,
passwd-files, a test CA and server certificate, and the users' Maildirs.
Mail processes run as the `mail` user (Dovecot refuses uid 0 for them).

    with Dovecot() as dv:
        client = dv.imap("alice")             # authenticated imaplib client
        ctx = dv.ssl_context()                # trusts the test CA
        dv.port_plain, dv.port_tls, dv.ca_file, dv.maildir_of("alice")
"""

import atexit
import errno
import grp
import imaplib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

__all__ = ["Dovecot", "HarnessError", "DEFAULT_USERS", "find_dovecot"]

README_TEST_HINT = (
    "install the Debian package dovecot-imapd (apt-get install dovecot-imapd), or run "
    "the README's test command scripts/test, which installs what is missing"
)

DEFAULT_USERS = {"alice": "Alice-pw-1", "bob": "Bob-pw-2"}
DEFAULT_MASTER = ("godwit-admin", "Master-pw-9")

# Special-use folders every instance declares (RFC 6154). Names are the
# folder names below the namespace prefix.
SPECIAL_USE = (
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)

# Instances not stopped yet; stopped at interpreter exit whatever the test did.
_RUNNING = set()

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class HarnessError(RuntimeError):
    """The harness cannot provide what a test needs (a test failure, never a skip)."""


def find_dovecot():
    """Path of the dovecot binary ($GODWIT_DOVECOT, PATH, /usr/sbin), or HarnessError."""
    override = os.environ.get("GODWIT_DOVECOT")
    if override:
        if not os.access(override, os.X_OK):
            raise HarnessError(
                "GODWIT_DOVECOT=%s is not an executable dovecot: the integration tests need a "
                "real Dovecot; %s" % (override, README_TEST_HINT))
        return override
    path = shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)),
        None,
    )
    if not path:
        raise HarnessError(
            "dovecot not found (searched PATH, /usr/sbin, /usr/local/sbin): the integration "
            "tests need a real Dovecot; " + README_TEST_HINT
        )
    return path


def _find_openssl():
    path = shutil.which("openssl")
    if not path:
        raise HarnessError("openssl not found: install the Debian package openssl")
    return path


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """In the child before exec: SIGTERM Dovecot's master if the test process dies
    (a ctest timeout, a kill), so no private instance outlives its test."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: stop() and atexit still clean up


def _keep_dirs_mode():
    """GODWIT_KEEP_TEST_DIRS: unset/0 never, 1 on failure, 'always' always."""
    value = os.environ.get("GODWIT_KEEP_TEST_DIRS", "").strip().lower()
    if value in ("", "0", "no", "false"):
        return "never"
    return "always" if value == "always" else "failure"


class Dovecot:
    """A private Dovecot instance; a context manager (start on enter, stop on exit).

    Options:
      users            dict user -> password (plaintext; stored as {PLAIN})
      master_user, master_password
                       the master (admin) identity: "user*master" LOGIN and
                       AUTHENTICATE PLAIN with authzid both work
      separator        hierarchy separator of the inbox namespace ("/" or ".")
      prefix           namespace prefix ("" or "INBOX." for a Courier-style server)
      listescape       load the listescape plugin, so that names may contain the
                       Maildir++ on-disk separator "." (with "/" as separator)
      mail_save_crlf   store messages with CRLF instead of bare LF
      imap_max_line_length
                       Dovecot's limit for command lines (bytes)
      append_limit     advertise APPENDLIMIT=<n> and enforce it (quota plugin,
                       quota_max_mail_size)
      max_user_connections
                       mail_max_userip_connections
      auth_penalty     keep Dovecot's growing delay after failed logins (off by default)
      extra_config     text appended to the generated dovecot.conf
      root_parent      where its root directory (config, mail, logs) is made
                       (default: the temporary directory)
    """

    def __init__(
        self,
        users=None,
        master_user=DEFAULT_MASTER[0],
        master_password=DEFAULT_MASTER[1],
        separator="/",
        prefix="",
        listescape=True,
        mail_save_crlf=False,
        imap_max_line_length=None,
        append_limit=None,
        max_user_connections=100,
        auth_penalty=False,
        extra_config="",
        root_parent=None,
    ):
        if separator not in ("/", "."):
            raise ValueError("separator must be '/' or '.'")
        if prefix and not prefix.endswith(separator):
            raise ValueError("prefix %r must end with the separator %r" % (prefix, separator))
        self.host = "127.0.0.1"
        self.port_plain = None
        self.port_tls = None
        self.users = {}
        self.master_user = master_user
        self.master_password = master_password
        self.separator = separator
        self.prefix = prefix
        self.listescape = listescape
        self.mail_save_crlf = mail_save_crlf
        self.imap_max_line_length = imap_max_line_length
        self.append_limit = append_limit
        self.max_user_connections = max_user_connections
        self.auth_penalty = auth_penalty
        self.extra_config = extra_config
        self.root_parent = root_parent
        self.root = None
        self.ca_file = None
        self.config_file = None
        self.log_file = None
        self.startup_seconds = None
        self._initial_users = dict(DEFAULT_USERS if users is None else users)
        self._proc = None
        self._failed = False
        self._mail_uid, self._mail_gid, self._run_as = self._identity()

    # --- lifecycle -----------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop(failed=exc_type is not None)
        return False

    def start(self):
        """Create the temp root, certificates and config, start Dovecot, wait for greetings."""
        if self._proc:
            raise HarnessError("Dovecot already started")
        binary = find_dovecot()
        began = time.monotonic()
        self.root = tempfile.mkdtemp(prefix="godwit-dovecot-", dir=self.root_parent)
        try:
            os.chmod(self.root, 0o711)  # mail processes (uid mail) must reach the homes
            for sub in ("state", "home"):
                os.mkdir(os.path.join(self.root, sub), 0o711)
            self._make_certificates()
            self._write_master_passwd()
            for user, password in self._initial_users.items():
                self.add_user(user, password)
            self._launch_with_free_ports(binary)
        except BaseException:
            self.stop(failed=True)
            raise
        self.startup_seconds = time.monotonic() - began
        _RUNNING.add(self)

    def mark_failed(self):
        """Keep the temp root at stop() when GODWIT_KEEP_TEST_DIRS=1."""
        self._failed = True

    def stop(self, failed=False):
        """Stop Dovecot (TERM, then KILL) and remove the temp root unless asked to keep it."""
        self._failed = self._failed or failed
        _RUNNING.discard(self)
        self._abandon_process()
        if self.root and os.path.isdir(self.root):
            mode = _keep_dirs_mode()
            if mode == "always" or (mode == "failure" and self._failed):
                sys.stderr.write("harness: kept Dovecot test directory %s\n" % self.root)
            else:
                shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self):
        return self._proc.pid if self._proc else None

    # --- users ---------------------------------------------------------------------

    def add_user(self, user, password=None):
        """Add a passwd-file user with its own Maildir home; returns the password.

        Works while Dovecot runs: passwd-file is re-read when it changes.
        """
        for what, value in (("user", user), ("password", password or "")):
            if any(c in value for c in ":\n\r\0") or (what == "user" and ("*" in value or not value)):
                raise ValueError("%s %r cannot go into a passwd-file" % (what, value))
        if user in self.users:
            raise ValueError("user %r exists" % user)
        if password is None:
            password = "pw-%s-%s" % (user, os.urandom(4).hex())
        home = self.home_of(user)
        os.mkdir(home, 0o700)
        os.chown(home, self._mail_uid, self._mail_gid)
        line = "%s:{PLAIN}%s:%d:%d::%s::\n" % (user, password, self._mail_uid, self._mail_gid, home)
        with open(self._path("users"), "a", encoding="utf-8") as f:
            f.write(line)
        self.users[user] = password
        return password

    def home_of(self, user):
        return os.path.join(self.root, "home", user)

    def maildir_of(self, user):
        """The user's Maildir++ root (INBOX; subfolders are .Name directories)."""
        return os.path.join(self.home_of(user), "Maildir")

    # --- clients -------------------------------------------------------------------

    def ssl_context(self, verify=True):
        """An SSLContext trusting only the test CA (check_hostname on), or no verification."""
        if not verify:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        return ssl.create_default_context(cafile=self.ca_file)

    def connect(self, tls="none", ssl_context=None):
        """An unauthenticated imaplib client: tls is "none", "starttls" or "implicit"."""
        if tls == "implicit":
            return imaplib.IMAP4_SSL(
                self.host, self.port_tls, ssl_context=ssl_context or self.ssl_context()
            )
        client = imaplib.IMAP4(self.host, self.port_plain)
        if tls == "starttls":
            client.starttls(ssl_context or self.ssl_context())
        elif tls != "none":
            raise ValueError("tls must be none, starttls or implicit")
        return client

    def imap(self, user, password=None, tls="none", master=None):
        """An authenticated imaplib client for @user.

        master=None: the user's own password with LOGIN;
        master="login": LOGIN "user*master" with the master password;
        master="plain": AUTHENTICATE PLAIN with authzid=user, authcid=master.
        """
        client = self.connect(tls)
        try:
            if master is None:
                client.login(user, password if password is not None else self.users[user])
            elif master == "login":
                client.login("%s*%s" % (user, self.master_user), self.master_password)
            elif master == "plain":
                token = ("%s\0%s\0%s" % (user, self.master_user, self.master_password)).encode()
                client.authenticate("PLAIN", lambda _challenge: token)
            else:
                raise ValueError("master must be None, 'login' or 'plain'")
        except BaseException:
            try:
                client.shutdown()
            except OSError:
                pass
            raise
        return client

    def folder_name(self, *components):
        """The full IMAP folder name (UTF-8) for a path below the namespace prefix."""
        return self.prefix + self.separator.join(components)

    def log_text(self):
        try:
            with open(self.log_file, encoding="utf-8", errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def describe(self):
        """One line for test output and the demo."""
        return "dovecot pid %s on %s: plain/STARTTLS %d, TLS %d, root %s" % (
            self.pid,
            self.host,
            self.port_plain,
            self.port_tls,
            self.root,
        )

    # --- internals -----------------------------------------------------------------

    def _path(self, *parts):
        return os.path.join(self.root, *parts)

    @staticmethod
    def _identity():
        """uid/gid for mail processes, and the login/internal user when not root."""
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("mail")
            except KeyError:
                raise HarnessError("user 'mail' not found; Dovecot mail processes cannot run as root")
            return pw.pw_uid, pw.pw_gid, None
        # Unprivileged: every Dovecot process runs as the invoking user.
        return os.getuid(), os.getgid(), pwd.getpwuid(os.getuid()).pw_name

    def _run(self, argv):
        result = subprocess.run(argv, capture_output=True, cwd=self.root)
        if result.returncode != 0:
            raise HarnessError(
                "%s failed (%d): %s"
                % (" ".join(argv[:3]), result.returncode, result.stderr.decode(errors="replace"))
            )

    def _make_certificates(self):
        """A test CA and a server certificate for 127.0.0.1 and localhost (EC P-256: fast)."""
        openssl = _find_openssl()
        ca_key, ca_crt = self._path("ca.key"), self._path("ca.crt")
        key, csr, crt = self._path("server.key"), self._path("server.csr"), self._path("server.crt")
        ext = self._path("server.ext")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        self._run(
            [openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_crt, "-days", "3650",
             "-subj", "/CN=godwit test CA %s" % os.path.basename(self.root),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
        )
        self._run([openssl, "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"])
        with open(ext, "w") as f:
            f.write(
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "authorityKeyIdentifier=keyid\n"
                "subjectKeyIdentifier=hash\n"
            )
        self._run(
            [openssl, "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
             "-CAcreateserial", "-out", crt, "-days", "3650", "-extfile", ext]
        )
        self.ca_file = ca_crt

    def _write_master_passwd(self):
        with open(self._path("masters"), "w", encoding="utf-8") as f:
            f.write("%s:{PLAIN}%s\n" % (self.master_user, self.master_password))

    def _config_text(self):
        root = self.root
        lines = [
            "# written by tests/harness/dovecot.py",
            "base_dir = %s/run" % root,
            "state_dir = %s/state" % root,
            "instance_name = godwit-test-%s" % os.path.basename(root),
            "log_path = %s" % self.log_file,
            "protocols = imap",
            "listen = 127.0.0.1",
            "ssl = yes",
            "ssl_cert = <%s/server.crt" % root,
            "ssl_key = <%s/server.key" % root,
            "disable_plaintext_auth = no",
            "auth_mechanisms = plain login",
            "auth_master_user_separator = *",
            "auth_failure_delay = 0",
            "auth_verbose = yes",
            "mail_location = maildir:~/Maildir",
            "mail_uid = %d" % self._mail_uid,
            "mail_gid = %d" % self._mail_gid,
            "first_valid_uid = %d" % min(self._mail_uid, 8),
            "first_valid_gid = %d" % min(self._mail_gid, 8),
            "mail_privileged_group =",
            # Test data is thrown away: fsync buys nothing but time.
            "mail_fsync = never",
            "mail_max_userip_connections = %d" % self.max_user_connections,
            "mail_save_crlf = %s" % ("yes" if self.mail_save_crlf else "no"),
        ]
        plugins = []
        if self.listescape:
            plugins.append("listescape")
        if self.append_limit is not None:
            plugins.append("quota")
        if plugins:
            lines.append("mail_plugins = $mail_plugins %s" % " ".join(plugins))
        if self.append_limit is not None:
            # quota_max_mail_size enforces the limit; Dovecot 2.3 does not advertise it.
            lines.append("imap_capability = +APPENDLIMIT=%d" % self.append_limit)
        if self.imap_max_line_length is not None:
            lines.append("imap_max_line_length = %d" % self.imap_max_line_length)
        if self._run_as:
            lines += [
                "default_login_user = %s" % self._run_as,
                "default_internal_user = %s" % self._run_as,
                "default_internal_group = %s" % grp.getgrgid(os.getgid()).gr_name,
            ]
        lines += ["namespace inbox {", "  inbox = yes", "  separator = %s" % self.separator]
        if self.prefix:
            lines.append("  prefix = %s" % self.prefix)
        for name, use in SPECIAL_USE:
            lines += [
                '  mailbox "%s" {' % name,
                "    special_use = %s" % use,
                "    auto = subscribe",
                "  }",
            ]
        lines += [
            "}",
            "passdb {",
            "  driver = passwd-file",
            "  args = scheme=PLAIN username_format=%%n %s/masters" % root,
            "  master = yes",
            "  pass = yes",
            "}",
            "passdb {",
            "  driver = passwd-file",
            "  args = scheme=PLAIN %s/users" % root,
            "}",
            "userdb {",
            "  driver = passwd-file",
            "  args = %s/users" % root,
            "}",
            "service imap-login {",
            "  inet_listener imap {",
            "    address = 127.0.0.1",
            "    port = %d" % self.port_plain,
            "  }",
            "  inet_listener imaps {",
            "    address = 127.0.0.1",
            "    port = %d" % self.port_tls,
            "    ssl = yes",
            "  }",
        ]
        if self._run_as:
            lines.append("  chroot =")
        lines += ["}"]
        if not self.auth_penalty:
            # Anvil's per-IP penalty would delay every login after a failed one by
            # up to 15 s; error-path tests log in wrongly on purpose.
            lines += [
                "service anvil {",
                "  unix_listener anvil-auth-penalty {",
                "    mode = 0",
                "  }",
                "}",
            ]
        if self.append_limit is not None:
            lines += [
                "plugin {",
                "  quota = count:User quota",
                "  quota_vsizes = yes",
                "  quota_max_mail_size = %d" % self.append_limit,
                "}",
            ]
        if self.extra_config:
            lines.append(self.extra_config)
        return "\n".join(lines) + "\n"

    def _launch_with_free_ports(self, binary):
        """Pick free ports and start; a port taken in between (rare race) means retry."""
        last_error = None
        for _attempt in range(3):
            self.port_plain, self.port_tls = _free_port(), _free_port()
            while self.port_tls == self.port_plain:
                self.port_tls = _free_port()
            self.config_file = self._path("dovecot.conf")
            self.log_file = self._path("dovecot.log")
            with open(self.config_file, "w", encoding="utf-8") as f:
                f.write(self._config_text())
            try:
                self._launch(binary)
                return
            except HarnessError as exc:
                last_error = exc
                if "Address already in use" not in str(exc):
                    raise
        raise last_error

    def _launch(self, binary):
        stderr = open(self._path("dovecot.stderr"), "wb")
        try:
            self._proc = subprocess.Popen(
                [binary, "-F", "-c", self.config_file],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                cwd=self.root,
                start_new_session=True,  # its own process group, see _abandon_process
                preexec_fn=_die_with_parent,
            )
        finally:
            stderr.close()
        try:
            self._wait_ready()
        except HarnessError:
            self._abandon_process()
            raise

    def _abandon_process(self):
        """TERM the whole process group (master and children at once: the master
        alone takes a second to reap its children), KILL what is left."""
        proc, self._proc = self._proc, None
        if not proc:
            return
        for sig, patience in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, None)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(patience)
                break
            except subprocess.TimeoutExpired:
                continue

    def _startup_failure(self, why):
        try:
            with open(self._path("dovecot.stderr"), encoding="utf-8", errors="replace") as f:
                stderr = f.read()
        except OSError:
            stderr = ""
        return HarnessError(
            "Dovecot did not start (%s); config %s\n--- stderr ---\n%s--- log ---\n%s"
            % (why, self.config_file, stderr, self.log_text()[-4000:])
        )

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        pending = {"plain": self.port_plain, "tls": self.port_tls}
        while pending:
            if self._proc.poll() is not None:
                raise self._startup_failure("exited with status %d" % self._proc.returncode)
            for kind, port in list(pending.items()):
                if self._greeting_arrives(kind, port):
                    del pending[kind]
            if time.monotonic() > deadline:
                raise self._startup_failure("no greeting within %.0f s" % START_TIMEOUT_S)
            if pending:
                time.sleep(0.02)

    def _greeting_arrives(self, kind, port):
        try:
            sock = socket.create_connection((self.host, port), timeout=2)
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ECONNRESET, None):
                return False
            raise
        try:
            if kind == "tls":
                sock = self.ssl_context().wrap_socket(sock, server_hostname=self.host)
            return sock.recv(512).startswith(b"* OK")
        except (OSError, ssl.SSLError):
            return False
        finally:
            sock.close()


@atexit.register
def _stop_leftovers():
    for instance in list(_RUNNING):
        instance.stop()
