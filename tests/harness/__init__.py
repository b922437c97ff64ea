"""Test harness shared by the integration tests and the demo (Python 3 stdlib only).

dovecot   a private Dovecot on 127.0.0.1 (random ports, test CA, master user)
mailgen   deterministic messages, edge cases included
seed      folder tree + messages into a user's mailbox, manifest fetched back
verify    manifests of a server or a Maildir tree, and their comparison
imapio    IMAP helpers (LIST, pipelined APPEND, FETCH) on imaplib
mutf7     modified UTF-7 folder names
testcase  unittest glue (one Dovecot per class, exit codes for ctest)

See docs/testing.md.
"""
