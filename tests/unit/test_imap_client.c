/* The IMAP client against a scripted peer on 127.0.0.1 (tls: none): the
 * response parser (literals split across reads, nested lists, NIL, quoted
 * escapes, untagged responses at any time), LIST/scan/fetch, authentication,
 * error mapping and limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap_client.h"
#include "imap_fetch.h"
#include "imap_parse.h"
#include "log.h"
#include "util.h"

#include "test_imap_peer.h"

#define GREETING "* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] ready\r\n"
#define LOGIN_STEPS                                                                                \
	{P_SEND, GREETING, 0}, {P_EXPECT, "LOGIN \"user\" \"secret\"", 0},                         \
	{                                                                                          \
		P_SEND, "$T OK [CAPABILITY IMAP4rev1 LITERAL+] logged in\r\n", 0                   \
	}
#define EXAMINE_STEPS(exists)                                                                      \
	{P_EXPECT, "EXAMINE \"INBOX\"", 0},                                                        \
	{                                                                                          \
		P_SEND,                                                                            \
		        "* " #exists                                                               \
		        " EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 100] ok\r\n"          \
		        "$T OK [READ-ONLY] done\r\n",                                              \
		        0                                                                          \
	}

static const struct gw_imap_api *api;
static struct gw_ctx ctx;
static struct peer peer;

static int setup(void **state)
{
	(void)state;
	api = gw_imap_client_api();
	memset(&ctx, 0, sizeof(ctx));
	return 0;
}

/* Sessions fetch one message per command unless a test asks for UID sets
 * (fetch_uids), so the replies of the per-message tests map to commands. */
static unsigned fetch_uids_per_command = 1;

static struct gw_imap *open_with(const struct peer_step *steps, size_t count, enum gw_imap_tls tls,
                                 uint32_t timeout_ms, unsigned depth, gw_status *status)
{
	peer_start(&peer, steps, count);
	struct gw_imap_params params = {
	        .struct_size = sizeof(params),
	        .host = "127.0.0.1",
	        .port = peer.port,
	        .tls = tls,
	        .tls_verify = true,
	        .timeout_ms = timeout_ms ? timeout_ms : 5000,
	        .pipeline_depth = depth,
	        .fetch_uids_per_command = fetch_uids_per_command,
	};
	struct gw_imap *imap = NULL;
	*status = api->connect(&ctx, &params, &imap);
	return imap;
}

/* Connect and log in as user/secret with LOGIN; @p timeout_ms 0: the default. */
static struct gw_imap *open_session_timed(const struct peer_step *steps, size_t count,
                                          unsigned depth, uint32_t timeout_ms)
{
	gw_status st;
	struct gw_imap *imap = open_with(steps, count, GW_IMAP_TLS_NONE, timeout_ms, depth, &st);
	assert_int_equal(st, GW_OK);
	struct gw_imap_credentials creds = {.struct_size = sizeof(creds),
	                                    .mechanism = GW_IMAP_AUTH_LOGIN,
	                                    .user = "user",
	                                    .secret = "secret"};
	assert_int_equal(api->login(imap, &creds), GW_OK);
	return imap;
}

static struct gw_imap *open_session(const struct peer_step *steps, size_t count, unsigned depth)
{
	return open_session_timed(steps, count, depth, 0);
}

static void select_inbox(struct gw_imap *imap, uint32_t exists)
{
	struct gw_folder_status status = {.struct_size = sizeof(status)};
	assert_int_equal(api->select(imap, "INBOX", true, &status), GW_OK);
	assert_int_equal(status.uidvalidity, 7);
	assert_int_equal(status.uidnext, 100);
	assert_int_equal(status.exists, exists);
}

static void finish(struct gw_imap *imap)
{
	api->close(imap);
	const char *deviation = peer_finish(&peer);
	if (deviation[0])
		fail_msg("peer: %s", deviation);
}

/* "{n}\r\n<text>" for scripts (static storage, one per slot). */
static const char *literal(int slot, const char *prefix, const char *text, const char *suffix)
{
	static char buf[8][4096];
	snprintf(buf[slot], sizeof(buf[slot]), "%s{%zu}\r\n%s%s", prefix, strlen(text), text,
	         suffix);
	return buf[slot];
}

/* ---- a fetch target that records what happens ---- */

struct record {
	struct gw_buf events;
	struct gw_buf bytes;
	uint32_t refuse_begin; /* begin() of this UID answers GW_ERR_MESSAGE */
	uint32_t refuse_data;  /* data() of this UID answers GW_ERR_MAILBOX */
	uint32_t current;
};

static struct record refusals;

static gw_status rec_begin(void *arg, uint32_t uid, uint64_t size)
{
	struct record *r = arg;
	gw_buf_printf(&r->events, "begin %u %llu|", uid, (unsigned long long)size);
	r->current = uid;
	return uid == r->refuse_begin ? GW_ERR_MESSAGE : GW_OK;
}

static gw_status rec_data(void *arg, const void *bytes, size_t length)
{
	struct record *r = arg;
	if (r->current == r->refuse_data)
		return GW_ERR_MAILBOX;
	gw_buf_append(&r->bytes, bytes, length);
	return GW_OK;
}

static gw_status rec_end(void *arg, uint32_t uid)
{
	struct record *r = arg;
	gw_buf_printf(&r->events, "end %u|", uid);
	return GW_OK;
}

static void rec_failed(void *arg, uint32_t uid, gw_status status, const char *reason)
{
	struct record *r = arg;
	gw_buf_printf(&r->events, "failed %u %s %s|", uid, gw_status_name(status), reason);
}

static gw_status fetch_uids(struct gw_imap *imap, struct record *r, const uint32_t *uids,
                            size_t count, uint64_t max_size)
{
	*r = refusals;
	memset(&refusals, 0, sizeof(refusals));
	gw_buf_append(&r->events, "", 0);
	gw_buf_append(&r->bytes, "", 0);
	struct gw_fetch_target target = {.struct_size = sizeof(target),
	                                 .arg = r,
	                                 .begin = rec_begin,
	                                 .data = rec_data,
	                                 .end = rec_end,
	                                 .failed = rec_failed};
	struct gw_fetch_request request = {
	        .struct_size = sizeof(request), .uids = uids, .count = count, .max_size = max_size};
	return api->fetch(imap, &request, &target);
}

static void record_free(struct record *r)
{
	gw_buf_free(&r->events);
	gw_buf_free(&r->bytes);
}

/* ---- LIST ---- */

struct folders {
	struct gw_buf text;
};

static gw_status on_folder(void *arg, const struct gw_folder_info *f)
{
	struct folders *out = arg;
	gw_buf_printf(&out->text, "[%s|%c|%d|%d]", f->name, f->delimiter ? f->delimiter : '0',
	              (int)f->role, f->selectable);
	return GW_OK;
}

static void test_list_plain(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        {P_EXPECT, "LIST \"\" \"*\"", 0},
	        {P_CHUNKED,
	         "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
	         "* LIST (\\Noselect \\HasChildren) \"/\" \"Archives\"\r\n"
	         "* 4 EXISTS\r\n"
	         "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n"
	         "* LIST (\\HasNoChildren) \"/\" \"Archives/2019 &- more\"\r\n",
	         7},
	        {P_SEND, literal(0, "* LIST (\\HasNoChildren) \"/\" ", "Entw&APw-rfe", "\r\n"), 0},
	        {P_SEND,
	         "* LIST (\\HasNoChildren) \"/\" \"with \\\"quote\\\" and \\\\ back\"\r\n"
	         "* LIST (\\HasNoChildren \\Junk) NIL flat\r\n"
	         "* LIST (\\NonExistent) \".\" \"&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-.x\"\r\n"
	         "* LIST () \"/\" \"raw-\xc3\xbc\"\r\n"
	         "$T OK done\r\n",
	         0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	struct folders out = {0};
	gw_buf_append(&out.text, "", 0);
	assert_int_equal(api->list(imap, on_folder, &out), GW_OK);
	assert_string_equal(out.text.data, "[INBOX|/|1|1]"
	                                   "[Archives|/|0|0]"
	                                   "[Sent Items|/|2|1]"
	                                   "[Archives/2019 & more|/|0|1]"
	                                   "[Entwürfe|/|0|1]"
	                                   "[with \"quote\" and \\ back|/|0|1]"
	                                   "[flat|0|5|1]"
	                                   "[Отправленные.x|.|0|0]"
	                                   "[raw-ü|/|0|1]");
	gw_buf_free(&out.text);
	finish(imap);
}

static void test_list_special_use_and_namespaces(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        {P_SEND, "* OK [CAPABILITY IMAP4rev1 LITERAL+] hi\r\n", 0},
	        {P_EXPECT, "LOGIN \"user\" \"secret\"", 0},
	        {P_SEND, "$T OK [CAPABILITY IMAP4rev1 NAMESPACE SPECIAL-USE LIST-EXTENDED] in\r\n",
	         0},
	        {P_EXPECT, "NAMESPACE", 0},
	        {P_SEND,
	         "* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) ((\"Shared/\" \"/\"))\r\n"
	         "$T OK done\r\n",
	         0},
	        {P_EXPECT, "LIST \"\" \"*\" RETURN (SPECIAL-USE)", 0},
	        {P_SEND,
	         "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
	         "* LIST (\\Noselect) \"/\" \"Other Users\"\r\n"
	         "* LIST (\\HasNoChildren) \"/\" \"Shared/team/INBOX\"\r\n"
	         "* LIST (\\HasNoChildren \\Trash) \"/\" \"Deleted\"\r\n"
	         "* LIST (\\Archive \\HasNoChildren) \"/\" \"Archive\"\r\n"
	         "* LIST (\\Drafts) \"/\" Drafts (CHILDINFO (\"SUBSCRIBED\"))\r\n"
	         "$T OK done\r\n",
	         0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	struct folders out = {0};
	gw_buf_append(&out.text, "", 0);
	assert_int_equal(api->list(imap, on_folder, &out), GW_OK);
	assert_string_equal(out.text.data,
	                    "[INBOX|/|1|1][Deleted|/|4|1][Archive|/|6|1][Drafts|/|3|1]");
	gw_buf_free(&out.text);
	finish(imap);
}

/* ---- scan ---- */

struct scanned {
	struct gw_buf text;
};

static gw_status on_meta(void *arg, const struct gw_message_meta *m)
{
	struct scanned *out = arg;
	gw_buf_printf(&out->text, "[%u %llu %lld %d %u", m->uid, (unsigned long long)m->size,
	              (long long)m->internal_date, m->tz_offset_min, m->flags);
	for (size_t i = 0; i < m->keyword_count; i++)
		gw_buf_printf(&out->text, " %s", m->keywords[i]);
	gw_buf_printf(&out->text, " %s]", m->message_id ? m->message_id : "-");
	return GW_OK;
}

static void test_scan(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        EXAMINE_STEPS(3),
	        {P_EXPECT,
	         "UID FETCH 5:* (UID RFC822.SIZE INTERNALDATE FLAGS "
	         "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
	         0},
	        {P_CHUNKED,
	         literal(0,
	                 "* 1 FETCH (UID 5 RFC822.SIZE 1234 INTERNALDATE \"17-Jul-1996 02:44:25 "
	                 "-0700\" FLAGS (\\Seen $Forwarded \\Recent Junk $label1) "
	                 "BODY[HEADER.FIELDS (MESSAGE-ID)] ",
	                 "Message-ID:\r\n <a@b.example>\r\n\r\n", ")\r\n"),
	         9},
	        {P_SEND,
	         "* 2 FETCH (FLAGS (\\Deleted))\r\n"
	         "* 4 EXISTS\r\n"
	         "* 2 FETCH (UID 9 RFC822.SIZE 10 INTERNALDATE \"31-Dec-1899 00:00:00 -1200\" "
	         "FLAGS (\\Answered \\Flagged \\Draft \\Deleted) "
	         "BODY[HEADER.FIELDS (MESSAGE-ID)] {2}\r\n\r\n)\r\n"
	         "* 3 FETCH (UID 4 RFC822.SIZE 7 INTERNALDATE \"01-Jan-2020 00:00:00 +0000\" "
	         "FLAGS ())\r\n"
	         "$T OK done\r\n",
	         0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	select_inbox(imap, 3);
	struct scanned out = {0};
	gw_buf_append(&out.text, "", 0);
	struct gw_scan_request req = {
	        .struct_size = sizeof(req), .want = GW_SCAN_MESSAGE_ID, .uid_min = 5};
	assert_int_equal(api->scan(imap, &req, on_meta, &out), GW_OK);
	/* UID 4 came with 5:* (the last message) and is filtered; the FLAGS-only
	 * FETCH is a flag update, not a message. */
	assert_string_equal(out.text.data, "[5 1234 837596665 -420 33 Junk $label1 <a@b.example>]"
	                                   "[9 10 -2209032000 -720 30 -]");
	gw_buf_free(&out.text);
	finish(imap);
}

static gw_status on_scan_begin(void *arg, size_t index, const struct gw_folder_status *status)
{
	struct scanned *out = arg;
	gw_buf_printf(&out->text, "(begin %zu %u %u)", index, status->uidvalidity, status->exists);
	return GW_OK;
}

static void on_scan_end(void *arg, size_t index, gw_status status, const char *reason)
{
	struct scanned *out = arg;
	gw_buf_printf(&out->text, "(end %zu %s %s)", index, gw_status_name(status),
	              reason ? reason : "-");
}

static void test_scan_folders_pipelined(void **state)
{
	(void)state;
	/* depth 4: each folder's EXAMINE and UID FETCH 1:* go out before the answers of
	 * the folders before; a refused EXAMINE ends its folder (its scan's BAD is not
	 * another failure); an empty folder's BAD to "1:*" is an empty folder; a refused
	 * scan fails only its folder. */
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        {P_EXPECT_RAW, "A2 EXAMINE \"A\"", 0},
	        {P_EXPECT_RAW, "A3 UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE FLAGS)", 0},
	        {P_EXPECT_RAW, "A4 EXAMINE \"B\"", 0},
	        {P_EXPECT_RAW, "A5 UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE FLAGS)", 0},
	        {P_SEND, "* 2 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\nA2 OK [READ-ONLY] done\r\n", 0},
	        {P_EXPECT_RAW, "A6 EXAMINE \"C\"", 0},
	        {P_SEND,
	         "* 1 FETCH (UID 4 RFC822.SIZE 10 INTERNALDATE \"01-Jan-2020 00:00:00 +0000\" "
	         "FLAGS (\\Seen))\r\n"
	         "* 2 FETCH (UID 9 RFC822.SIZE 20 INTERNALDATE \"02-Jan-2020 00:00:00 +0000\" "
	         "FLAGS ())\r\n"
	         "A3 OK done\r\n",
	         0},
	        {P_EXPECT_RAW, "A7 UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE FLAGS)", 0},
	        {P_SEND,
	         "A4 NO [NONEXISTENT] Mailbox doesn't exist: B\r\nA5 BAD No mailbox selected\r\n",
	         0},
	        {P_EXPECT_RAW, "A8 EXAMINE \"D\"", 0},
	        {P_EXPECT_RAW, "A9 UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE FLAGS)", 0},
	        {P_SEND,
	         "* 0 EXISTS\r\n* OK [UIDVALIDITY 3] ok\r\nA6 OK [READ-ONLY] done\r\n"
	         "A7 BAD Invalid messageset\r\n"
	         "* 1 EXISTS\r\n* OK [UIDVALIDITY 5] ok\r\nA8 OK [READ-ONLY] done\r\n"
	         "A9 NO [SERVERBUG] broken\r\n",
	         0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 4);
	struct gw_scan_request requests[4];
	const char *names[] = {"A", "B", "C", "D"};
	for (size_t i = 0; i < 4; i++)
		requests[i] = (struct gw_scan_request){
		        .struct_size = sizeof(requests[i]), .uid_min = 1, .folder = names[i]};
	struct scanned out = {0};
	gw_buf_append(&out.text, "", 0);
	struct gw_scan_target target = {.struct_size = sizeof(target),
	                                .arg = &out,
	                                .folder_begin = on_scan_begin,
	                                .meta = on_meta,
	                                .folder_end = on_scan_end};
	assert_int_equal(api->scan_folders(imap, requests, 4, &target), GW_OK);
	assert_string_equal(
	        out.text.data,
	        "(begin 0 7 2)[4 10 1577836800 0 1 -][9 20 1577923200 0 0 -](end 0 ok -)"
	        "(end 1 folder cannot select folder \"B\": Mailbox doesn't exist: B)"
	        "(begin 2 3 0)(end 2 ok -)"
	        "(begin 3 5 1)(end 3 folder cannot scan the folder: broken)");
	gw_buf_free(&out.text);
	finish(imap);
}

static void test_scan_empty_folder_sends_nothing(void **state)
{
	(void)state;
	const struct peer_step steps[] = {LOGIN_STEPS, EXAMINE_STEPS(0)};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	select_inbox(imap, 0);
	struct scanned out = {0};
	gw_buf_append(&out.text, "", 0);
	struct gw_scan_request req = {.struct_size = sizeof(req), .uid_min = 1};
	assert_int_equal(api->scan(imap, &req, on_meta, &out), GW_OK);
	assert_string_equal(out.text.data, "");
	gw_buf_free(&out.text);
	finish(imap);
}

/* ---- fetch ---- */

static void test_fetch_pipelined(void **state)
{
	(void)state;
	/* depth 2: A3 and A4 go out together, A5 after A3 completes, A6 after A4. */
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        EXAMINE_STEPS(4),
	        {P_EXPECT, "UID FETCH 5 (BODY.PEEK[])", 0},
	        {P_EXPECT, "UID FETCH 6 (BODY.PEEK[])", 0},
	        {P_CHUNKED,
	         "* 1 FETCH (UID 5 BODY[] {12}\r\nhello\r\nworld)\r\n"
	         "* 2 FETCH (FLAGS (\\Seen))\r\n"
	         "* 5 EXISTS\r\n"
	         "A3 OK done\r\n",
	         5},
	        {P_EXPECT, "UID FETCH 7 (BODY.PEEK[])", 0},
	        {P_SEND,
	         "* 2 FETCH (UID 6 FLAGS (\\Seen) BODY[] {4}\r\n(x{))\r\n"
	         "* 1 EXPUNGE\r\n"
	         "A4 OK done\r\n",
	         0},
	        {P_EXPECT, "UID FETCH 8 (BODY.PEEK[])", 0},
	        {P_SEND, "A5 OK nothing\r\n", 0},
	        {P_SEND, "* 3 FETCH (BODY[] \"ti\\\"ny\" UID 8)\r\nA6 OK done\r\n", 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 2);
	select_inbox(imap, 4);
	struct record r;
	const uint32_t uids[] = {5, 6, 7, 8};
	assert_int_equal(fetch_uids(imap, &r, uids, 4, 0), GW_OK);
	assert_string_equal(r.events.data, "begin 5 12|end 5|begin 6 4|end 6|"
	                                   "failed 7 message UID 7 no longer exists|"
	                                   "begin 8 5|end 8|");
	assert_int_equal(r.bytes.len, 21);
	assert_memory_equal(r.bytes.data, "hello\r\nworld(x{)ti\"ny", 21);
	record_free(&r);
	finish(imap);
}

/* @p bytes must be the peer's P_LITERAL pattern (byte i is i % 251). */
static void assert_peer_literal(const char *bytes, size_t len, uint32_t uid)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)bytes[i] != i % 251)
			fail_msg("byte %zu of UID %u differs", i, (unsigned)uid);
}

static void test_fetch_large_and_oversized(void **state)
{
	(void)state;
	/* 200000 bytes stream through the read buffer; 300000 > max_size is skipped
	 * without being buffered, and the next message still arrives. */
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        EXAMINE_STEPS(3),
	        {P_EXPECT, "UID FETCH 5 (BODY.PEEK[])", 0},
	        {P_EXPECT, "UID FETCH 6 (BODY.PEEK[])", 0},
	        {P_EXPECT, "UID FETCH 7 (BODY.PEEK[])", 0},
	        {P_SEND, "* 1 FETCH (UID 5 BODY[] {200000}\r\n", 0},
	        {P_LITERAL, NULL, 200000},
	        {P_SEND, ")\r\nA3 OK done\r\n* 2 FETCH (UID 6 BODY[] ~{300000}\r\n", 0},
	        {P_LITERAL, NULL, 300000},
	        {P_SEND, ")\r\nA4 OK done\r\n* 3 FETCH (UID 7 BODY[] {3}\r\nabc)\r\nA5 OK done\r\n",
	         0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	select_inbox(imap, 3);
	struct record r;
	const uint32_t uids[] = {5, 6, 7};
	assert_int_equal(fetch_uids(imap, &r, uids, 3, 250000), GW_OK);
	assert_string_equal(r.events.data,
	                    "begin 5 200000|end 5|"
	                    "failed 6 message message of 300000 bytes exceeds the limit of 250000 "
	                    "bytes|"
	                    "begin 7 3|end 7|");
	assert_int_equal(r.bytes.len, 200003);
	assert_peer_literal(r.bytes.data, 200000, 5);
	assert_memory_equal(r.bytes.data + 200000, "abc", 3);
	record_free(&r);
	finish(imap);
}

static void test_fetch_trickled_literal(void **state)
{
	(void)state;
	/* A literal that trickles in (4 KiB every 20 ms, 0.6 s for all of it) on a
	 * connection with a 200 ms timeout: the client waits for more than the
	 * first packet of an announced literal (SO_RCVLOWAT), but a server that
	 * keeps sending must not time out while the bytes come slower than that. */
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        EXAMINE_STEPS(1),
	        {P_EXPECT, "UID FETCH 5 (BODY.PEEK[])", 0},
	        {P_SEND, "* 1 FETCH (UID 5 BODY[] {120000}\r\n", 0},
	        {P_LITERAL_TRICKLE, NULL, 120000},
	        {P_SEND, ")\r\nA3 OK done\r\n", 0},
	};
	struct gw_imap *imap = open_session_timed(PEER_STEPS(steps), 0, 200);
	select_inbox(imap, 1);
	struct record r;
	const uint32_t uids[] = {5};
	assert_int_equal(fetch_uids(imap, &r, uids, 1, 0), GW_OK);
	assert_string_equal(r.events.data, "begin 5 120000|end 5|");
	assert_int_equal(r.bytes.len, 120000);
	assert_peer_literal(r.bytes.data, 120000, 5);
	record_free(&r);
	finish(imap);
}

/* A target that offers room: a window of at most @p window bytes of its own
 * buffer, and counts what arrives in it. */
struct roomy {
	struct record r;
	unsigned char place[65536];
	size_t window;
	size_t calls;
	size_t in_place;
};

static void *roomy_room(void *arg, size_t *length)
{
	struct roomy *y = arg;
	y->calls++;
	*length = y->window;
	return y->window ? y->place : NULL;
}

static gw_status roomy_data(void *arg, const void *bytes, size_t length)
{
	struct roomy *y = arg;
	if (bytes == y->place)
		y->in_place += length;
	return rec_data(&y->r, bytes, length);
}

static gw_status roomy_begin(void *arg, uint32_t uid, uint64_t size)
{
	return rec_begin(&((struct roomy *)arg)->r, uid, size);
}

static gw_status roomy_end(void *arg, uint32_t uid)
{
	return rec_end(&((struct roomy *)arg)->r, uid);
}

static void roomy_failed(void *arg, uint32_t uid, gw_status status, const char *reason)
{
	rec_failed(&((struct roomy *)arg)->r, uid, status, reason);
}

/* One fetch of UIDs 5 (a 1 MB literal), 6 (3 bytes) and 7 (40,000 bytes)
 * into @p y, whose target is @p target_size bytes long. */
static void fetch_into_room(struct roomy *y, size_t target_size)
{
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        EXAMINE_STEPS(3),
	        {P_EXPECT, "UID FETCH 5 (BODY.PEEK[])", 0},
	        {P_EXPECT, "UID FETCH 6 (BODY.PEEK[])", 0},
	        {P_EXPECT, "UID FETCH 7 (BODY.PEEK[])", 0},
	        {P_SEND, "* 1 FETCH (UID 5 BODY[] {1000000}\r\n", 0},
	        {P_LITERAL, NULL, 1000000},
	        {P_SEND,
	         ")\r\nA3 OK done\r\n* 2 FETCH (UID 6 BODY[] {3}\r\nabc)\r\nA4 OK done\r\n"
	         "* 3 FETCH (UID 7 BODY[] {40000}\r\n",
	         0},
	        {P_LITERAL, NULL, 40000},
	        {P_SEND, ")\r\nA5 OK done\r\n", 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	select_inbox(imap, 3);
	gw_buf_append(&y->r.events, "", 0);
	gw_buf_append(&y->r.bytes, "", 0);
	struct gw_fetch_target target = {.struct_size = target_size,
	                                 .arg = y,
	                                 .begin = roomy_begin,
	                                 .data = roomy_data,
	                                 .end = roomy_end,
	                                 .failed = roomy_failed,
	                                 .room = roomy_room};
	const uint32_t uids[] = {5, 6, 7};
	struct gw_fetch_request request = {
	        .struct_size = sizeof(request), .uids = uids, .count = 3};
	assert_int_equal(api->fetch(imap, &request, &target), GW_OK);
	assert_string_equal(y->r.events.data, "begin 5 1000000|end 5|begin 6 3|end 6|"
	                                      "begin 7 40000|end 7|");
	assert_int_equal(y->r.bytes.len, 1040003);
	assert_peer_literal(y->r.bytes.data, 1000000, 5);
	assert_memory_equal(y->r.bytes.data + 1000000, "abc", 3);
	assert_peer_literal(y->r.bytes.data + 1000003, 40000, 7);
	record_free(&y->r);
	finish(imap);
}

static void test_fetch_into_room(void **state)
{
	(void)state;
	/* Once the read buffer (256 KiB) is empty, the rest of a large literal is
	 * received in the target's room, window by window; below 32 KiB left, the
	 * read buffer takes the rest with what follows. */
	struct roomy *y = calloc(1, sizeof(*y));
	y->window = 50000;
	fetch_into_room(y, sizeof(struct gw_fetch_target));
	assert_true(y->calls > 0);
	assert_true(y->in_place >= 1000000 - GW_IMAP_READ_BUF - GW_IMAP_DIRECT_MIN);
	/* UID 7 too, when its literal had not arrived yet as its line was parsed. */
	assert_true(y->in_place <= 1000000 + 40000);

	/* A target of ABI 1.3 has no room member: it is never called. */
	memset(y, 0, sizeof(*y));
	y->window = 50000;
	fetch_into_room(y, offsetof(struct gw_fetch_target, room));
	assert_int_equal(y->calls, 0);
	assert_int_equal(y->in_place, 0);

	/* No room offered: the bytes come through the read buffer. */
	memset(y, 0, sizeof(*y));
	fetch_into_room(y, sizeof(struct gw_fetch_target));
	assert_true(y->calls > 0);
	assert_int_equal(y->in_place, 0);
	free(y);
}

static void test_fetch_bye_midway(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        EXAMINE_STEPS(2),
	        {P_EXPECT, "UID FETCH 5 (BODY.PEEK[])", 0},
	        {P_EXPECT, "UID FETCH 6 (BODY.PEEK[])", 0},
	        {P_SEND,
	         "* 1 FETCH (UID 5 BODY[] {2}\r\nok)\r\nA3 OK done\r\n"
	         "* BYE Server shutting down\r\n",
	         0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	select_inbox(imap, 2);
	struct record r;
	const uint32_t uids[] = {5, 6};
	assert_int_equal(fetch_uids(imap, &r, uids, 2, 0), GW_ERR_SESSION);
	assert_string_equal(r.events.data, "begin 5 2|end 5|");
	assert_string_equal(ctx.error,
	                    "IMAP server 127.0.0.1 closed the connection: Server shutting down");
	assert_string_equal(api->last_response(imap), "Server shutting down");
	/* The connection is gone: later calls fail fast with a session error. */
	struct gw_folder_status status = {.struct_size = sizeof(status)};
	assert_int_equal(api->select(imap, "INBOX", true, &status), GW_ERR_SESSION);
	assert_string_equal(ctx.error, "the connection to 127.0.0.1 was lost earlier; reconnect");
	record_free(&r);
	finish(imap);
}

static void test_fetch_eof_in_literal(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        EXAMINE_STEPS(1),
	        {P_EXPECT, "UID FETCH 5 (BODY.PEEK[])", 0},
	        {P_SEND, "* 1 FETCH (UID 5 BODY[] {100}\r\nonly ten b", 0},
	        {P_CLOSE, NULL, 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	select_inbox(imap, 1);
	struct record r;
	const uint32_t uids[] = {5};
	assert_int_equal(fetch_uids(imap, &r, uids, 1, 0), GW_ERR_SESSION);
	assert_string_equal(r.events.data, "begin 5 100|failed 5 session the connection was lost "
	                                   "while fetching UID 5|");
	char want[128];
	snprintf(want, sizeof(want), "connection closed by 127.0.0.1:%u", peer.port);
	assert_string_equal(ctx.error, want);
	record_free(&r);
	finish(imap);
}

static void test_fetch_throttled(void **state)
{
	(void)state;
	/* depth 2: A5 (UID 7) goes out when A3 completes; A4 is throttled, so UID 8 is
	 * never requested, while A5, already in flight, is still delivered. */
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        EXAMINE_STEPS(3),
	        {P_EXPECT, "UID FETCH 5 (BODY.PEEK[])", 0},
	        {P_EXPECT, "UID FETCH 6 (BODY.PEEK[])", 0},
	        {P_SEND, "* 1 FETCH (UID 5 BODY[] {2}\r\nok)\r\nA3 OK done\r\n", 0},
	        {P_EXPECT, "UID FETCH 7 (BODY.PEEK[])", 0},
	        {P_SEND,
	         "A4 NO [THROTTLED] Request is throttled. Suggested Backoff Time: 1500 "
	         "milliseconds\r\n"
	         "* 3 FETCH (UID 7 BODY[] {3}\r\nsev)\r\nA5 OK done\r\n",
	         0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 2);
	select_inbox(imap, 3);
	struct record r;
	const uint32_t uids[] = {5, 6, 7, 8};
	assert_int_equal(fetch_uids(imap, &r, uids, 4, 0), GW_ERR_THROTTLED);
	assert_string_equal(r.events.data, "begin 5 2|end 5|begin 7 3|end 7|");
	assert_int_equal(ctx.retry_after_ms, 1500);
	assert_string_equal(ctx.error, "the server throttles fetching: Request is throttled. "
	                               "Suggested Backoff Time: 1500 milliseconds");
	record_free(&r);
	finish(imap);
}

static void test_fetch_uid_sets(void **state)
{
	(void)state;
	/* 3 UIDs per command, sorted and compressed; answers in the server's order
	 * map back by UID; a body without its UID cannot be placed in a set; what a
	 * tagged reply leaves undelivered fails alone. */
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        EXAMINE_STEPS(6),
	        {P_EXPECT, "UID FETCH 5:6,9 (BODY.PEEK[])", 0},
	        {P_EXPECT, "UID FETCH 7,12 (BODY.PEEK[])", 0},
	        {P_SEND,
	         "* 3 FETCH (UID 9 BODY[] {3}\r\nnin)\r\n"
	         "* 1 FETCH (BODY[] {3}\r\nwho)\r\n"
	         "* 1 FETCH (UID 5 BODY[] {4}\r\nfive)\r\n"
	         "A3 OK done\r\n"
	         "* 4 FETCH (UID 7 BODY[] \"sv\")\r\n"
	         "A4 NO [SERVERBUG] broken\r\n",
	         0},
	};
	fetch_uids_per_command = 3;
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 2);
	fetch_uids_per_command = 1;
	select_inbox(imap, 6);
	struct record r;
	const uint32_t uids[] = {9, 5, 6, 12, 7};
	assert_int_equal(fetch_uids(imap, &r, uids, 5, 0), GW_OK);
	assert_string_equal(r.events.data, "begin 9 3|end 9|begin 5 4|end 5|"
	                                   "failed 6 message UID 6 no longer exists|"
	                                   "begin 7 2|end 7|"
	                                   "failed 12 message the server refused UID 12: broken|");
	assert_string_equal(r.bytes.data, "ninfivesv");
	record_free(&r);
	finish(imap);
}

static void rec_request(void *arg, size_t index)
{
	struct record *r = arg;
	gw_buf_printf(&r->events, "request %zu|", index);
}

static void test_fetch_folders_pipelined(void **state)
{
	(void)state;
	/* depth 4: each folder's EXAMINE goes out with the UID FETCH commands before
	 * it, before their answers. Bodies belong to the folder whose EXAMINE was
	 * answered last (A and B both have a UID 1); a refused EXAMINE fails its
	 * folder once, not its messages; a changed UIDVALIDITY delivers nothing of
	 * that folder and stops the fetch. */
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        {P_EXPECT_RAW, "A2 EXAMINE \"A\"", 0},
	        {P_EXPECT_RAW, "A3 UID FETCH 1 (BODY.PEEK[])", 0},
	        {P_EXPECT_RAW, "A4 UID FETCH 2 (BODY.PEEK[])", 0},
	        {P_EXPECT_RAW, "A5 EXAMINE \"B\"", 0},
	        {P_SEND, "* 2 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\nA2 OK [READ-ONLY] done\r\n", 0},
	        {P_EXPECT_RAW, "A6 UID FETCH 1 (BODY.PEEK[])", 0},
	        {P_SEND, "* 1 FETCH (UID 1 BODY[] {2}\r\na1)\r\nA3 OK done\r\n", 0},
	        {P_EXPECT_RAW, "A7 EXAMINE \"C\"", 0},
	        {P_SEND, "* 2 FETCH (UID 2 BODY[] {2}\r\na2)\r\nA4 OK done\r\n", 0},
	        {P_EXPECT_RAW, "A8 UID FETCH 3 (BODY.PEEK[])", 0},
	        {P_SEND, "* 1 EXISTS\r\n* OK [UIDVALIDITY 9] ok\r\nA5 OK [READ-ONLY] done\r\n", 0},
	        {P_EXPECT_RAW, "A9 EXAMINE \"D\"", 0},
	        {P_SEND, "* 1 FETCH (UID 1 BODY[] {2}\r\nb1)\r\nA6 OK done\r\n", 0},
	        {P_EXPECT_RAW, "A10 UID FETCH 2 (BODY.PEEK[])", 0},
	        {P_SEND,
	         "A7 NO [NONEXISTENT] Mailbox doesn't exist: C\r\n"
	         "A8 BAD No mailbox selected\r\n"
	         "* 1 EXISTS\r\n* OK [UIDVALIDITY 6] ok\r\nA9 OK [READ-ONLY] done\r\n"
	         "* 1 FETCH (UID 2 BODY[] {2}\r\nd2)\r\nA10 OK done\r\n",
	         0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 4);
	const uint32_t a[] = {1, 2}, b[] = {1}, c[] = {3}, d[] = {2};
	struct gw_fetch_request requests[] = {
	        {.struct_size = sizeof(requests[0]),
	         .uids = a,
	         .count = 2,
	         .folder = "A",
	         .uidvalidity = 7},
	        {.struct_size = sizeof(requests[0]),
	         .uids = b,
	         .count = 1,
	         .folder = "B",
	         .uidvalidity = 9},
	        {.struct_size = sizeof(requests[0]),
	         .uids = c,
	         .count = 1,
	         .folder = "C",
	         .uidvalidity = 1},
	        {.struct_size = sizeof(requests[0]),
	         .uids = d,
	         .count = 1,
	         .folder = "D",
	         .uidvalidity = 5},
	};
	struct record r = {0};
	gw_buf_append(&r.events, "", 0);
	gw_buf_append(&r.bytes, "", 0);
	struct gw_fetch_target target = {.struct_size = sizeof(target),
	                                 .arg = &r,
	                                 .begin = rec_begin,
	                                 .data = rec_data,
	                                 .end = rec_end,
	                                 .failed = rec_failed,
	                                 .request = rec_request};
	assert_int_equal(api->fetch_folders(imap, requests, 4, &target), GW_ERR_SESSION);
	assert_string_equal(r.events.data, "request 0|begin 1 2|end 1|begin 2 2|end 2|"
	                                   "request 1|begin 1 2|end 1|"
	                                   "request 2|failed 0 folder cannot select folder \"C\": "
	                                   "Mailbox doesn't exist: C|"
	                                   "request 3|failed 0 session UIDVALIDITY changed during "
	                                   "the run (5 -> 6); scanning again|");
	assert_string_equal(r.bytes.data, "a1a2b1");
	assert_string_equal(ctx.error,
	                    "UIDVALIDITY changed during the run (5 -> 6); scanning again");
	record_free(&r);
	finish(imap);
}

static void test_fetch_target_refusals_and_wrong_uid(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        EXAMINE_STEPS(4),
	        {P_EXPECT, "UID FETCH 5 (BODY.PEEK[])", 0},
	        {P_EXPECT, "UID FETCH 6 (BODY.PEEK[])", 0},
	        {P_EXPECT, "UID FETCH 7 (BODY.PEEK[])", 0},
	        {P_EXPECT, "UID FETCH 8 (BODY.PEEK[])", 0},
	        {P_SEND,
	         "* 1 FETCH (UID 5 BODY[] {3}\r\nxxx)\r\nA3 OK done\r\n"
	         "* 2 FETCH (UID 6 BODY[] {3}\r\nyyy)\r\nA4 OK done\r\n"
	         "* 3 FETCH (BODY[] {3}\r\nzzz UID 9)\r\nA5 OK done\r\n"
	         "* 4 FETCH (UID 8 BODY[] {3}\r\nabc)\r\nA6 OK [sloppy server\r\n",
	         0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	select_inbox(imap, 4);
	struct record r;
	refusals.refuse_begin = 5;
	refusals.refuse_data = 6;
	const uint32_t uids[] = {5, 6, 7, 8};
	/* begin() refusing one message skips it; data() failing with a wider scope
	 * reports the message and stops the fetch once the replies are drained. */
	assert_int_equal(fetch_uids(imap, &r, uids, 4, 0), GW_ERR_MAILBOX);
	assert_string_equal(r.events.data,
	                    "begin 5 3|"
	                    "begin 6 3|failed 6 mailbox the bytes of UID 6 could not be stored|"
	                    "begin 7 3|failed 7 message the server sent UID 9 in answer to UID 7|"
	                    "begin 8 3|end 8|");
	assert_string_equal(r.bytes.data, "zzzabc");
	record_free(&r);
	finish(imap);
}

static void test_line_over_cap(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        {P_EXPECT, "EXAMINE \"INBOX\"", 0},
	        {P_SEND, "* OK ", 0},
	        {P_RAW_BYTES, NULL, 1024 * 1024 + 64},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	struct gw_folder_status status = {.struct_size = sizeof(status)};
	assert_int_equal(api->select(imap, "INBOX", true, &status), GW_ERR_SESSION);
	assert_string_equal(ctx.error, "IMAP server 127.0.0.1 sent a line longer than 1048576 "
	                               "bytes; dropping the connection");
	finish(imap);
}

static void test_malformed_responses(void **state)
{
	(void)state;
	static const struct {
		const char *reply;
		const char *error;
	} cases[] = {
	        {"* LIST (\\Noselect \"/\" x\r\n", "unterminated list"},
	        {"* LIST () \"/\" \"open\r\n", "unterminated quoted string"},
	        {"* LIST () \"/\" {12x}\r\n", "malformed literal size"},
	        {"* LIST () \"/\" {3} x\r\n", "literal size not at the end of a line"},
	        {"* LIST () ) x\r\n", "unexpected ')'"},
	        {"A2 MAYBE\r\n", "tagged response without OK, NO or BAD"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct peer_step steps[] = {
		        LOGIN_STEPS,
		        {P_EXPECT, "LIST \"\" \"*\"", 0},
		        {P_SEND, cases[i].reply, 0},
		};
		struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
		struct folders out = {0};
		assert_int_equal(api->list(imap, on_folder, &out), GW_ERR_SESSION);
		char want[256];
		snprintf(want, sizeof(want), "IMAP protocol error from 127.0.0.1: %s",
		         cases[i].error);
		assert_string_equal(ctx.error, want);
		gw_buf_free(&out.text);
		finish(imap);
	}
}

static void test_nesting_limit(void **state)
{
	(void)state;
	char reply[512] = "* LIST ";
	for (int i = 0; i < 70; i++)
		strcat(reply, "(");
	strcat(reply, "\r\n");
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        {P_EXPECT, "LIST \"\" \"*\"", 0},
	        {P_SEND, reply, 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	struct folders out = {0};
	assert_int_equal(api->list(imap, on_folder, &out), GW_ERR_SESSION);
	assert_string_equal(ctx.error, "IMAP protocol error from 127.0.0.1: lists nested too "
	                               "deeply");
	finish(imap);
}

/* ---- authentication and errors ---- */

static void test_login_refused(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        {P_SEND, GREETING, 0},
	        {P_EXPECT, "LOGIN \"us\\\"er\" \"secret\"", 0},
	        {P_SEND, "$T NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", 0},
	};
	gw_status st;
	struct gw_imap *imap = open_with(PEER_STEPS(steps), GW_IMAP_TLS_NONE, 0, 0, &st);
	assert_int_equal(st, GW_OK);
	struct gw_imap_credentials creds = {.struct_size = sizeof(creds),
	                                    .mechanism = GW_IMAP_AUTH_LOGIN,
	                                    .user = "us\"er",
	                                    .secret = "secret"};
	assert_int_equal(api->login(imap, &creds), GW_ERR_AUTH);
	assert_string_equal(ctx.error,
	                    "login as us\"er refused by 127.0.0.1: Authentication failed.");
	assert_string_equal(api->last_response(imap), "Authentication failed.");
	finish(imap);
}

static void test_login_synchronizing_literal(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        {P_SEND, "* OK [CAPABILITY IMAP4rev1] hi\r\n", 0},
	        {P_EXPECT, "LOGIN \"user\" {10}", 0},
	        {P_SEND, "+ go ahead\r\n", 0},
	        {P_EXPECT_RAW, "p\xc3\xa4ssw\xc3\xb6rd", 0},
	        {P_SEND, "$T OK logged in\r\n", 0},
	        {P_EXPECT, "CAPABILITY", 0},
	        {P_SEND, "* CAPABILITY IMAP4rev1 X-After-Login\r\n$T OK done\r\n", 0},
	};
	gw_status st;
	struct gw_imap *imap = open_with(PEER_STEPS(steps), GW_IMAP_TLS_NONE, 0, 0, &st);
	assert_int_equal(st, GW_OK);
	assert_false(api->has_capability(imap, "x-after-login"));
	struct gw_imap_credentials creds = {.struct_size = sizeof(creds),
	                                    .mechanism = GW_IMAP_AUTH_LOGIN,
	                                    .user = "user",
	                                    .secret = "p\xc3\xa4sswörd"};
	assert_int_equal(api->login(imap, &creds), GW_OK);
	assert_true(api->has_capability(imap, "x-after-login"));
	assert_true(api->has_capability(imap, "IMAP4REV1"));
	finish(imap);
}

static void test_authenticate_plain_master(void **state)
{
	(void)state;
	/* SASL-IR: the response travels with the command; authzid\0authcid\0password. */
	const struct peer_step steps[] = {
	        {P_SEND, "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN ID] hi\r\n", 0},
	        {P_EXPECT_PREFIX, "ID (\"name\" \"godwit\" \"version\" \"", 0},
	        {P_SEND, "* ID NIL\r\n$T OK ID done\r\n", 0},
	        {P_EXPECT, "AUTHENTICATE PLAIN Ym9iAGFkbWluAHB3", 0},
	        {P_SEND, "$T OK [CAPABILITY IMAP4rev1 UIDPLUS] welcome bob\r\n", 0},
	};
	gw_status st;
	struct gw_imap *imap = open_with(PEER_STEPS(steps), GW_IMAP_TLS_NONE, 0, 0, &st);
	assert_int_equal(st, GW_OK);
	struct gw_imap_credentials creds = {.struct_size = sizeof(creds),
	                                    .mechanism = GW_IMAP_AUTH_PLAIN,
	                                    .user = "admin",
	                                    .secret = "pw",
	                                    .authzid = "bob"};
	assert_int_equal(api->login(imap, &creds), GW_OK);
	assert_true(api->has_capability(imap, "uidplus"));
	finish(imap);
}

static void test_authenticate_xoauth2_refused(void **state)
{
	(void)state;
	/* No SASL-IR: wait for "+", send the response, answer the error challenge
	 * with an empty line, then get the tagged NO. */
	const struct peer_step steps[] = {
	        {P_SEND, "* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] hi\r\n", 0},
	        {P_EXPECT, "AUTHENTICATE XOAUTH2", 0},
	        {P_SEND, "+ \r\n", 0},
	        {P_EXPECT_RAW, "dXNlcj11QHguZXhhbXBsZQFhdXRoPUJlYXJlciB0b2sxMjMBAQ==", 0},
	        {P_SEND, "+ eyJzdGF0dXMiOiI0MDEifQ==\r\n", 0},
	        {P_EXPECT_RAW, "", 0},
	        {P_SEND, "$T NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n", 0},
	};
	gw_status st;
	struct gw_imap *imap = open_with(PEER_STEPS(steps), GW_IMAP_TLS_NONE, 0, 0, &st);
	assert_int_equal(st, GW_OK);
	struct gw_imap_credentials creds = {.struct_size = sizeof(creds),
	                                    .mechanism = GW_IMAP_AUTH_XOAUTH2,
	                                    .user = "u@x.example",
	                                    .secret = "tok123"};
	assert_int_equal(api->login(imap, &creds), GW_ERR_AUTH);
	assert_string_equal(ctx.error, "login as u@x.example refused by 127.0.0.1: Invalid "
	                               "credentials (Failure)");
	finish(imap);
}

static void test_throttled_select(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        {P_EXPECT, "EXAMINE \"Gel&APY-schte \\\"Elemente\\\"\"", 0},
	        {P_SEND,
	         "$T NO [THROTTLED] Request is throttled. Suggested Backoff Time: 5000 "
	         "milliseconds\r\n",
	         0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	struct gw_folder_status status = {.struct_size = sizeof(status)};
	assert_int_equal(api->select(imap, "Gelöschte \"Elemente\"", true, &status),
	                 GW_ERR_THROTTLED);
	assert_int_equal(ctx.retry_after_ms, 5000);
	assert_string_equal(ctx.error, "cannot select folder \"Gelöschte \"Elemente\"\": Request "
	                               "is throttled. Suggested Backoff Time: 5000 milliseconds");
	finish(imap);
}

static void test_select_missing_folder(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        LOGIN_STEPS,
	        {P_EXPECT, "EXAMINE \"Nope\"", 0},
	        {P_SEND, "$T NO [NONEXISTENT] Mailbox doesn't exist: Nope\r\n", 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	struct gw_folder_status status = {.struct_size = sizeof(status)};
	assert_int_equal(api->select(imap, "Nope", true, &status), GW_ERR_FOLDER);
	assert_string_equal(ctx.error,
	                    "cannot select folder \"Nope\": Mailbox doesn't exist: Nope");
	/* Nothing is selected now: scanning is refused without a round trip. */
	struct gw_scan_request req = {.struct_size = sizeof(req), .uid_min = 1};
	assert_int_equal(api->scan(imap, &req, on_meta, NULL), GW_ERR_FOLDER);
	assert_string_equal(ctx.error, "no folder is selected");
	finish(imap);
}

static void test_timeout(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        {P_SEND, GREETING, 0},
	        {P_EXPECT, "LOGIN \"user\" \"secret\"", 0},
	        {P_SLEEP, NULL, 700},
	};
	gw_status st;
	struct gw_imap *imap = open_with(PEER_STEPS(steps), GW_IMAP_TLS_NONE, 200, 0, &st);
	assert_int_equal(st, GW_OK);
	struct gw_imap_credentials creds = {.struct_size = sizeof(creds),
	                                    .mechanism = GW_IMAP_AUTH_LOGIN,
	                                    .user = "user",
	                                    .secret = "secret"};
	assert_int_equal(api->login(imap, &creds), GW_ERR_SESSION);
	char want[128];
	snprintf(want, sizeof(want), "timed out after 200 ms waiting for 127.0.0.1:%u", peer.port);
	assert_string_equal(ctx.error, want);
	finish(imap);
}

static void test_starttls_not_offered(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        {P_SEND, "* OK [CAPABILITY IMAP4rev1] hi\r\n", 0},
	};
	gw_status st;
	struct gw_imap *imap = open_with(PEER_STEPS(steps), GW_IMAP_TLS_STARTTLS, 0, 0, &st);
	assert_null(imap);
	assert_int_equal(st, GW_ERR_CONFIG);
	assert_string_equal(ctx.error,
	                    "127.0.0.1 does not offer STARTTLS; use tls: implicit (port 993)");
	peer_finish(&peer);
}

static void test_greeting_bye(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        {P_SEND, "* BYE Too many connections\r\n", 0},
	};
	gw_status st;
	struct gw_imap *imap = open_with(PEER_STEPS(steps), GW_IMAP_TLS_NONE, 0, 0, &st);
	assert_null(imap);
	assert_int_equal(st, GW_ERR_SESSION);
	assert_string_equal(ctx.error,
	                    "IMAP server 127.0.0.1 closed the connection: Too many connections");
	peer_finish(&peer);
}

static void test_connection_refused(void **state)
{
	(void)state;
	/* A port nobody listens on: bind one, learn its number, close it. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
	                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	getsockname(fd, (struct sockaddr *)&addr, &len);
	close(fd);
	struct gw_imap_params params = {.struct_size = sizeof(params),
	                                .host = "127.0.0.1",
	                                .port = ntohs(addr.sin_port),
	                                .tls = GW_IMAP_TLS_NONE};
	struct gw_imap *imap = NULL;
	assert_int_equal(api->connect(&ctx, &params, &imap), GW_ERR_SESSION);
	assert_null(imap);
	char want[128];
	snprintf(want, sizeof(want), "cannot connect to 127.0.0.1:%u: Connection refused",
	         ntohs(addr.sin_port));
	assert_string_equal(ctx.error, want);
}

/* ---- traces ---- */

static void test_trace_redacts_credentials(void **state)
{
	(void)state;
	FILE *log = tmpfile();
	assert_non_null(log);
	gw_log_set_stream(log);
	gw_log_set_level(GW_LOG_TRACE);
	const struct peer_step steps[] = {
	        {P_SEND, GREETING, 0},
	        {P_EXPECT, "LOGIN \"user\" \"s3cr3t-pw\"", 0},
	        {P_SEND, "$T OK [CAPABILITY IMAP4rev1] in\r\n", 0},
	        EXAMINE_STEPS(1),
	        {P_EXPECT, "UID FETCH 5 (BODY.PEEK[])", 0},
	        {P_SEND, "* 1 FETCH (UID 5 BODY[] {12}\r\nhello\r\nworld)\r\n$T OK done\r\n", 0},
	};
	gw_status st;
	struct gw_imap *imap = open_with(PEER_STEPS(steps), GW_IMAP_TLS_NONE, 0, 0, &st);
	assert_int_equal(st, GW_OK);
	struct gw_imap_credentials creds = {.struct_size = sizeof(creds),
	                                    .mechanism = GW_IMAP_AUTH_LOGIN,
	                                    .user = "user",
	                                    .secret = "s3cr3t-pw"};
	assert_int_equal(api->login(imap, &creds), GW_OK);
	select_inbox(imap, 1);
	struct record r;
	const uint32_t uids[] = {5};
	assert_int_equal(fetch_uids(imap, &r, uids, 1, 0), GW_OK);
	finish(imap);
	gw_log_set_level(GW_LOG_INFO);
	gw_log_set_stream(NULL);

	fflush(log);
	long size = ftell(log);
	rewind(log);
	char *text = calloc(1, (size_t)size + 1);
	assert_int_equal(fread(text, 1, (size_t)size, log), (size_t)size);
	fclose(log);
	assert_null(strstr(text, "s3cr3t-pw"));
	assert_null(strstr(text, "hello"));
	assert_non_null(strstr(text, "C: A1 LOGIN *** ***\n"));
	assert_non_null(strstr(text, "S: * 1 FETCH (UID 5 BODY[] {12}\n"));
	assert_non_null(strstr(text, "S: {12 bytes}\n"));
	assert_non_null(strstr(text, "C: A3 UID FETCH 5 (BODY.PEEK[])\n"));
	free(text);
	record_free(&r);
}

/* ---- INTERNALDATE ---- */

static void test_internaldate(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int64_t epoch;
		int32_t tz;
	} good[] = {
	        {"17-Jul-1996 02:44:25 -0700", 837596665, -420},
	        {" 1-Jan-2000 00:00:00 +0000", 946684800, 0},
	        {"1-Jan-2000 00:00:00 +0000", 946684800, 0},
	        {"29-Feb-2024 23:59:59 +0530", 1709231399, 330},
	        {"01-jan-1970 00:00:00 +0100", -3600, 60},
	        {"31-Dec-1899 00:00:00 -1200", -2209032000, -720},
	        {"31-DEC-1969 23:30:00 -0030", 0, -30},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int64_t epoch = 1;
		int32_t tz = 1;
		if (!gw_imap_parse_internaldate(good[i].text, &epoch, &tz))
			fail_msg("refused \"%s\"", good[i].text);
		assert_int_equal(epoch, good[i].epoch);
		assert_int_equal(tz, good[i].tz);
	}
	static const char *const bad[] = {
	        "",
	        "30-Feb-2023 00:00:00 +0000",
	        "29-Feb-2023 00:00:00 +0000",
	        "01-Foo-2020 00:00:00 +0000",
	        "01-Jan-2020 24:00:00 +0000",
	        "01-Jan-2020 00:60:00 +0000",
	        "01-Jan-2020 00:00:00 0000",
	        "01-Jan-2020 00:00:00 +00000",
	        "01-Jan-2020 00:00:00 +0060",
	        "01-Jan-20 00:00:00 +0000",
	        "01-Jan-2020T00:00:00 +0000",
	        "001-Jan-2020 00:00:00 +0000",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t epoch;
		int32_t tz;
		if (gw_imap_parse_internaldate(bad[i], &epoch, &tz))
			fail_msg("accepted \"%s\"", bad[i]);
	}
}

static void test_flags(void **state)
{
	(void)state;
	assert_int_equal(gw_imap_flag_bit("\\seen"), GW_FLAG_SEEN);
	assert_int_equal(gw_imap_flag_bit("\\ANSWERED"), GW_FLAG_ANSWERED);
	assert_int_equal(gw_imap_flag_bit("$forwarded"), GW_FLAG_FORWARDED);
	assert_int_equal(gw_imap_flag_bit("\\Recent"), 0);
	assert_int_equal(gw_imap_flag_bit("Forwarded"), 0);
	assert_false(gw_imap_is_keyword("\\Recent"));
	assert_false(gw_imap_is_keyword("\\*"));
	assert_false(gw_imap_is_keyword("$Forwarded"));
	assert_true(gw_imap_is_keyword("$MDNSent"));
	assert_true(gw_imap_is_keyword("NonJunk"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(test_list_plain, setup),
	        cmocka_unit_test_setup(test_list_special_use_and_namespaces, setup),
	        cmocka_unit_test_setup(test_scan, setup),
	        cmocka_unit_test_setup(test_scan_empty_folder_sends_nothing, setup),
	        cmocka_unit_test_setup(test_fetch_pipelined, setup),
	        cmocka_unit_test_setup(test_fetch_large_and_oversized, setup),
	        cmocka_unit_test_setup(test_fetch_into_room, setup),
	        cmocka_unit_test_setup(test_fetch_bye_midway, setup),
	        cmocka_unit_test_setup(test_fetch_eof_in_literal, setup),
	        cmocka_unit_test_setup(test_fetch_throttled, setup),
	        cmocka_unit_test_setup(test_fetch_uid_sets, setup),
	        cmocka_unit_test_setup(test_fetch_folders_pipelined, setup),
	        cmocka_unit_test_setup(test_scan_folders_pipelined, setup),
	        cmocka_unit_test_setup(test_fetch_target_refusals_and_wrong_uid, setup),
	        cmocka_unit_test_setup(test_line_over_cap, setup),
	        cmocka_unit_test_setup(test_malformed_responses, setup),
	        cmocka_unit_test_setup(test_nesting_limit, setup),
	        cmocka_unit_test_setup(test_login_refused, setup),
	        cmocka_unit_test_setup(test_login_synchronizing_literal, setup),
	        cmocka_unit_test_setup(test_authenticate_plain_master, setup),
	        cmocka_unit_test_setup(test_authenticate_xoauth2_refused, setup),
	        cmocka_unit_test_setup(test_throttled_select, setup),
	        cmocka_unit_test_setup(test_select_missing_folder, setup),
	        cmocka_unit_test_setup(test_timeout, setup),
	        cmocka_unit_test_setup(test_fetch_trickled_literal, setup),
	        cmocka_unit_test_setup(test_starttls_not_offered, setup),
	        cmocka_unit_test_setup(test_greeting_bye, setup),
	        cmocka_unit_test_setup(test_connection_refused, setup),
	        cmocka_unit_test_setup(test_trace_redacts_credentials, setup),
	        cmocka_unit_test(test_internaldate),
	        cmocka_unit_test(test_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
