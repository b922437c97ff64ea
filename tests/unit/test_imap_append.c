/* The IMAP client's sink side against a scripted peer on 127.0.0.1
 * (tls: none): APPEND with LITERAL+, LITERAL- and synchronising literals,
 * flags filtered by PERMANENTFLAGS, INTERNALDATE in the message's zone,
 * pipelined APPENDs matched to their tagged replies, APPENDUID, APPENDLIMIT,
 * refusals mapped to scoped statuses, NAMESPACE, CREATE, SUBSCRIBE, SEARCH. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "imap_client.h"
#include "imap_fetch.h"
#include "log.h"
#include "util.h"

#include "test_imap_peer.h"

/* 1996-07-17 09:44:25 UTC, written in the zone -0700. */
#define DATE_EPOCH 837596665
#define DATE_TEXT  "\"17-Jul-1996 02:44:25 -0700\""

#define SELECT_STEPS(perm)                                                                         \
	{P_EXPECT, "SELECT \"INBOX\"", 0},                                                         \
	{                                                                                          \
		P_SEND,                                                                            \
		        "* FLAGS (\\Seen \\Flagged)\r\n* OK [PERMANENTFLAGS " perm "] ok\r\n"      \
		        "* 0 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 100] ok\r\n"       \
		        "$T OK [READ-WRITE] done\r\n",                                             \
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

/* Connect with @p caps in the greeting and log in as user/secret (tag A1). */
static struct gw_imap *open_session(const struct peer_step *steps, size_t count, unsigned depth)
{
	peer_start(&peer, steps, count);
	struct gw_imap_params params = {
	        .struct_size = sizeof(params),
	        .host = "127.0.0.1",
	        .port = peer.port,
	        .tls = GW_IMAP_TLS_NONE,
	        .timeout_ms = 5000,
	        .pipeline_depth = depth,
	};
	struct gw_imap *imap = NULL;
	assert_int_equal(api->connect(&ctx, &params, &imap), GW_OK);
	struct gw_imap_credentials creds = {.struct_size = sizeof(creds),
	                                    .mechanism = GW_IMAP_AUTH_LOGIN,
	                                    .user = "user",
	                                    .secret = "secret"};
	assert_int_equal(api->login(imap, &creds), GW_OK);
	return imap;
}

#define LOGIN_WITH(caps)                                                                           \
	{P_SEND, "* OK [CAPABILITY IMAP4rev1 " caps "] hi\r\n", 0},                                \
	        {P_EXPECT, "LOGIN \"user\" \"secret\"", 0},                                        \
	{                                                                                          \
		P_SEND, "$T OK [CAPABILITY IMAP4rev1 " caps "] in\r\n", 0                          \
	}

/* A server that names itself Dovecot in its ID replies: asked once before
 * login, and again (ID NIL) after it, before the first MULTIAPPEND. */
#define DOVECOT_LOGIN_AND_ID                                                                       \
	{P_SEND, "* OK [CAPABILITY IMAP4rev1 ID] hi\r\n", 0},                                      \
	        {P_EXPECT_PREFIX, "ID (\"name\" \"godwit\" \"version\" \"", 0},                    \
	        {P_SEND, "* ID (\"name\" \"Dovecot\")\r\n$T OK id\r\n", 0},                        \
	        {P_EXPECT, "LOGIN \"user\" \"secret\"", 0},                                        \
	        {P_SEND, "$T OK [CAPABILITY IMAP4rev1 ID LITERAL+ UIDPLUS MULTIAPPEND] in\r\n",    \
	         0},                                                                               \
	        SELECT_STEPS("(\\Seen \\Flagged)"), {P_EXPECT, "ID NIL", 0},                       \
	{                                                                                          \
		P_SEND, "* ID (\"name\" \"Dovecot\" \"version\" \"2.3.19\")\r\n$T OK id\r\n", 0    \
	}

static void finish(struct gw_imap *imap)
{
	api->close(imap);
	const char *deviation = peer_finish(&peer);
	if (deviation[0])
		fail_msg("peer: %s", deviation);
}

/* ---- results, recorded as text ---- */

static struct gw_buf results;

static void on_result(void *arg, const struct gw_imap_append_result *r)
{
	(void)arg;
	gw_buf_printf(&results, "[%s %s %u:%u", (const char *)r->user, gw_status_name(r->status),
	              r->uidvalidity, r->uid);
	if (r->retry_after_ms)
		gw_buf_printf(&results, " retry %u", r->retry_after_ms);
	if (r->text[0])
		gw_buf_printf(&results, " \"%s\"", r->text);
	if (r->dropped_flags[0])
		gw_buf_printf(&results, " dropped \"%s\"", r->dropped_flags);
	gw_buf_puts(&results, "]");
}

static const char *take_results(void)
{
	static char text[2048];
	snprintf(text, sizeof(text), "%s", results.data ? results.data : "");
	gw_buf_free(&results);
	return text;
}

static struct gw_imap_append message(const char *name, const char *bytes)
{
	return (struct gw_imap_append){.struct_size = sizeof(struct gw_imap_append),
	                               .folder = "INBOX",
	                               .data = (const unsigned char *)bytes,
	                               .size = strlen(bytes),
	                               .user = (void *)name};
}

static void describe_inbox(struct gw_imap *imap, uint64_t limit, bool any_keyword)
{
	struct gw_imap_mailbox_info info = {.struct_size = sizeof(info)};
	assert_int_equal(api->mailbox_info(imap, "INBOX", &info), GW_OK);
	assert_int_equal(info.uidvalidity, 7);
	assert_int_equal(info.uidnext, 100);
	assert_int_equal(info.append_limit, limit);
	assert_int_equal(info.any_keyword, any_keyword);
}

/* ---- LITERAL+ and pipelining ---- */

static void test_literal_plus_pipelined(void **state)
{
	(void)state;
	/* depth 2: A3 and A4 go out at once; the third append waits for A3's reply. */
	const struct peer_step steps[] = {
	        LOGIN_WITH("LITERAL+ UIDPLUS"),
	        SELECT_STEPS("(\\Seen \\Flagged $Forwarded)"),
	        {P_EXPECT, "APPEND \"INBOX\" (\\Seen $Forwarded) " DATE_TEXT " {12+}", 0},
	        {P_EXPECT_RAW, "hello", 0},
	        {P_EXPECT_RAW, "world", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {3+}", 0},
	        {P_EXPECT_RAW, "two", 0},
	        {P_SEND, "* 1 EXISTS\r\nA3 OK [APPENDUID 7 100] done\r\n", 0},
	        {P_EXPECT, "APPEND \"INBOX\" (\\Flagged) {5+}", 0},
	        {P_EXPECT_RAW, "three", 0},
	        {P_SEND, "A4 NO [TOOBIG] Message too large\r\nA5 OK [APPENDUID 7 101] ok\r\n", 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 2);
	describe_inbox(imap, 0, false);
	const char *keywords[] = {"$Forwarded", "custom", "bad word"};
	struct gw_imap_append m1 = message("m1", "hello\r\nworld");
	m1.flags = GW_FLAG_SEEN | GW_FLAG_DELETED | GW_FLAG_FORWARDED;
	m1.keywords = keywords;
	m1.keyword_count = 3;
	m1.has_internal_date = true;
	m1.internal_date = DATE_EPOCH;
	m1.tz_offset_min = -420;
	struct gw_imap_append m2 = message("m2", "two");
	struct gw_imap_append m3 = message("m3", "three");
	m3.flags = GW_FLAG_FLAGGED;
	assert_int_equal(api->append(imap, &m1, on_result, NULL), GW_OK);
	assert_int_equal(api->append(imap, &m2, on_result, NULL), GW_OK);
	assert_string_equal(take_results(), "");
	assert_int_equal(api->append(imap, &m3, on_result, NULL), GW_OK);
	assert_string_equal(take_results(), "[m1 ok 7:100 dropped \"\\Deleted custom bad word\"]");
	assert_int_equal(api->append_wait(imap), GW_OK);
	assert_string_equal(take_results(), "[m2 message 0:0 \"Message too large\"][m3 ok 7:101]");
	assert_string_equal(api->last_response(imap), "Message too large");
	finish(imap);
}

/* A large message the core spooled to a file is read from there in chunks: its
 * mapping is never touched (here it allows no access at all). */
static void test_large_literal_read_from_its_file(void **state)
{
	(void)state;
	enum { SIZE = 256 * 1024 + 1, SHOWN = 8191 /* what the peer keeps of a line */ };
	static char shown[SHOWN + 1];
	memset(shown, 'a', SHOWN);
	const struct peer_step steps[] = {
	        LOGIN_WITH("LITERAL+ UIDPLUS"),
	        SELECT_STEPS("(\\Seen)"),
	        {P_EXPECT, "APPEND \"INBOX\" () {262145+}", 0},
	        {P_EXPECT_RAW, shown, 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {3+}", 0},
	        {P_EXPECT_RAW, "two", 0},
	        {P_SEND, "A3 OK [APPENDUID 7 100] ok\r\nA4 OK [APPENDUID 7 101] ok\r\n", 0},
	};
	FILE *file = tmpfile();
	assert_non_null(file);
	for (int i = 0; i < SIZE; i++)
		fputc('a', file);
	fflush(file);
	int fd = fileno(file);
	off_t offset_before = lseek(fd, 0, SEEK_CUR);
	void *no_access = mmap(NULL, SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(no_access != MAP_FAILED);
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 4);
	describe_inbox(imap, 0, false);
	struct gw_imap_append big = message("big", "");
	big.data = no_access;
	big.size = SIZE;
	big.in_file = true;
	big.file_fd = fd;
	struct gw_imap_append two = message("two", "two");
	assert_int_equal(api->append(imap, &big, on_result, NULL), GW_OK);
	assert_int_equal(api->append(imap, &two, on_result, NULL), GW_OK);
	assert_int_equal(api->append_wait(imap), GW_OK);
	assert_string_equal(take_results(), "[big ok 7:100][two ok 7:101]");
	assert_int_equal(lseek(fd, 0, SEEK_CUR), offset_before);
	finish(imap);
	munmap(no_access, SIZE);
	fclose(file);
}

/* ---- MULTIAPPEND ---- */

/* Append "one", "two" (\Seen) and "three" to INBOX, each handed over in a
 * block of exactly @p struct_size bytes (a caller built against an older ABI
 * passes a shorter struct): no result before the wait, @p want after it. */
static void append_one_two_three_as(struct gw_imap *imap, size_t struct_size, const char *want)
{
	struct gw_imap_append m[3] = {message("m1", "one"), message("m2", "two"),
	                              message("m3", "three")};
	m[1].flags = GW_FLAG_SEEN;
	for (size_t i = 0; i < 3; i++) {
		m[i].struct_size = struct_size;
		struct gw_imap_append *exact = gw_xmalloc(struct_size);
		memcpy(exact, &m[i], struct_size);
		assert_int_equal(api->append(imap, exact, on_result, NULL), GW_OK);
		free(exact);
	}
	assert_string_equal(take_results(), "");
	assert_int_equal(api->append_wait(imap), GW_OK);
	assert_string_equal(take_results(), want);
}

static void append_one_two_three(struct gw_imap *imap, const char *want)
{
	append_one_two_three_as(imap, sizeof(struct gw_imap_append), want);
}

/* The first message goes with the command line ({n+}); each later one
 * announces a synchronising literal and is sent only after "+"; the command
 * ends when the caller waits. APPENDUID's uid-set gives each its UID. */
static void one_command_per_folder(size_t struct_size)
{
	const struct peer_step steps[] = {
	        LOGIN_WITH("LITERAL+ UIDPLUS MULTIAPPEND"),
	        SELECT_STEPS("(\\Seen \\Flagged)"),
	        {P_EXPECT, "APPEND \"INBOX\" () {3+}", 0},
	        {P_EXPECT_RAW, "one (\\Seen) {3}", 0},
	        {P_SEND, "+ go\r\n", 0},
	        {P_EXPECT_RAW, "two () {5}", 0},
	        {P_SEND, "+ go\r\n", 0},
	        {P_EXPECT_RAW, "three", 0},
	        {P_SEND, "$T OK [APPENDUID 7 100:101,105] done\r\n", 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 4);
	describe_inbox(imap, 0, false);
	append_one_two_three_as(imap, struct_size, "[m1 ok 7:100][m2 ok 7:101][m3 ok 7:105]");
	finish(imap);
}

static void test_multiappend_one_command_per_folder(void **state)
{
	(void)state;
	one_command_per_folder(sizeof(struct gw_imap_append));
}

static void test_multiappend_from_an_abi_1_0_caller(void **state)
{
	(void)state;
	/* A sink built against ABI 1.0 passes a gw_imap_append that ends before
	 * in_file: grouping must not read past it (under ASan a read there fails). */
	one_command_per_folder(offsetof(struct gw_imap_append, in_file));
}

static void test_multiappend_refused_goes_again_alone(void **state)
{
	(void)state;
	/* The server ends the command instead of asking for the second message:
	 * that message's bytes never follow, it goes in a command of its own, and
	 * so does the first (which of them the server refused is unknown). Only
	 * the message refused alone fails. */
	const struct peer_step steps[] = {
	        LOGIN_WITH("LITERAL+ UIDPLUS MULTIAPPEND"),
	        SELECT_STEPS("(\\Seen \\Flagged)"),
	        {P_EXPECT, "APPEND \"INBOX\" () {3+}", 0},
	        {P_EXPECT_RAW, "one () {3}", 0},
	        {P_SEND, "$T NO [TOOBIG] Message too large\r\n", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {3+}", 0},
	        {P_EXPECT_RAW, "two", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {3+}", 0},
	        {P_EXPECT_RAW, "one", 0},
	        {P_SEND, "A4 NO [TOOBIG] Message too large\r\nA5 OK [APPENDUID 7 100] ok\r\n", 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 4);
	describe_inbox(imap, 0, false);
	struct gw_imap_append m1 = message("m1", "one");
	struct gw_imap_append m2 = message("m2", "two");
	assert_int_equal(api->append(imap, &m1, on_result, NULL), GW_OK);
	assert_int_equal(api->append(imap, &m2, on_result, NULL), GW_OK);
	assert_string_equal(take_results(), "");
	assert_int_equal(api->append_wait(imap), GW_OK);
	assert_string_equal(take_results(), "[m2 message 0:0 \"Message too large\"][m1 ok 7:100]");
	finish(imap);
}

static void test_multiappend_off_when_round_trips_are_slow(void **state)
{
	(void)state;
	/* Every "+" takes 2 ms (a remote server): after 16 such waits the messages
	 * go as pipelined APPENDs of their own again. */
	enum { GROUPED = 17, WAITS = GROUPED - 1 };
	struct peer_step steps[64] = {
	        LOGIN_WITH("LITERAL+ UIDPLUS MULTIAPPEND"),
	        SELECT_STEPS("(\\Seen)"),
	        {P_EXPECT, "APPEND \"INBOX\" () {1+}", 0},
	};
	size_t n = 0;
	while (steps[n].op != P_END)
		n++;
	for (int i = 0; i < WAITS; i++) {
		steps[n++] = (struct peer_step){P_EXPECT_RAW, "x () {1}", 0};
		steps[n++] = (struct peer_step){P_SLEEP, NULL, 2};
		steps[n++] = (struct peer_step){P_SEND, "+ go\r\n", 0};
	}
	steps[n++] = (struct peer_step){P_EXPECT_RAW, "x", 0};
	steps[n++] = (struct peer_step){P_EXPECT, "APPEND \"INBOX\" () {1+}", 0};
	steps[n++] = (struct peer_step){P_EXPECT_RAW, "x", 0};
	steps[n++] = (struct peer_step){
	        P_SEND, "A3 OK [APPENDUID 7 1:17] ok\r\nA4 OK [APPENDUID 7 18] ok\r\n", 0};
	struct gw_imap *imap = open_session(steps, n, 4);
	describe_inbox(imap, 0, false);
	static char names[GROUPED + 1][8];
	struct gw_buf want = {0};
	for (int i = 0; i <= GROUPED; i++) {
		snprintf(names[i], sizeof(names[i]), "m%d", i + 1);
		struct gw_imap_append m = message(names[i], "x");
		assert_int_equal(api->append(imap, &m, on_result, NULL), GW_OK);
		gw_buf_printf(&want, "[m%d ok 7:%d]", i + 1, i + 1);
	}
	assert_int_equal(api->append_wait(imap), GW_OK);
	assert_string_equal(take_results(), want.data);
	gw_buf_free(&want);
	finish(imap);
}

static void test_multiappend_ahead_into_dovecot(void **state)
{
	(void)state;
	/* A server that names itself Dovecot in its ID reply (asked once, after
	 * login, before the first group) reads a refused MULTIAPPEND on to its
	 * end: every message goes with a non-synchronising literal, no "+" is
	 * waited for. A refusal of the command still sends each message again
	 * alone. */
	const struct peer_step steps[] = {
	        DOVECOT_LOGIN_AND_ID,
	        {P_EXPECT, "APPEND \"INBOX\" () {3+}", 0},
	        {P_EXPECT_RAW, "one (\\Seen) {3+}", 0},
	        {P_EXPECT_RAW, "two () {5+}", 0},
	        {P_EXPECT_RAW, "three", 0},
	        {P_SEND, "$T NO [LIMIT] too large\r\n", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {3+}", 0},
	        {P_EXPECT_RAW, "one", 0},
	        {P_EXPECT, "APPEND \"INBOX\" (\\Seen) {3+}", 0},
	        {P_EXPECT_RAW, "two", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {5+}", 0},
	        {P_EXPECT_RAW, "three", 0},
	        {P_SEND,
	         "A6 OK [APPENDUID 7 100] ok\r\nA7 NO [LIMIT] too large\r\n"
	         "A8 OK [APPENDUID 7 101] ok\r\n",
	         0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 4);
	describe_inbox(imap, 0, false);
	append_one_two_three(imap, "[m1 ok 7:100][m2 message 0:0 \"too large\"][m3 ok 7:101]");
	finish(imap);
}

/* A message of @p size bytes of the peer's pattern (byte i is i % 251). */
static struct gw_imap_append pattern_message(const char *name, size_t size)
{
	unsigned char *bytes = gw_xmalloc(size);
	for (size_t i = 0; i < size; i++)
		bytes[i] = (unsigned char)(i % 251);
	return (struct gw_imap_append){.struct_size = sizeof(struct gw_imap_append),
	                               .folder = "INBOX",
	                               .data = bytes,
	                               .size = size,
	                               .user = (void *)name};
}

static void test_multiappend_groups_large_messages_without_waiting(void **state)
{
	(void)state;
	/* Messages up to 2 MiB share a command (Dovecot stores a command in one
	 * transaction, which costs it about as much as a message), up to 4 MiB a
	 * command. A message that fits the open command joins it even when the
	 * copies kept for a resend are over their bound (4 MiB): only a new
	 * command waits for answers, so waiting never cuts a group short. The
	 * server answers nothing until the seventh message needs a third command. */
	enum { SIZE = 1200000, COUNT = 7 };
#define LARGE_NEXT                                                                                 \
	{P_EXPECT_LITERAL, NULL, SIZE},                                                            \
	{                                                                                          \
		P_EXPECT_RAW, " () {1200000+}", 0                                                  \
	}
	const struct peer_step steps[] = {
	        DOVECOT_LOGIN_AND_ID,
	        {P_EXPECT, "APPEND \"INBOX\" () {1200000+}", 0}, /* A5 */
	        LARGE_NEXT,
	        LARGE_NEXT,
	        {P_EXPECT_LITERAL, NULL, SIZE},
	        {P_EXPECT_RAW, "", 0}, /* a fourth would not fit: A5 ends, 3.6 MB of copies */
	        {P_EXPECT, "APPEND \"INBOX\" () {1200000+}", 0}, /* A6 */
	        LARGE_NEXT, /* 6 MB of copies: joins all the same */
	        LARGE_NEXT,
	        {P_EXPECT_LITERAL, NULL, SIZE},
	        {P_EXPECT_RAW, "", 0},
	        {P_SEND, "A5 OK [APPENDUID 7 100:102] ok\r\n", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {1200000+}", 0}, /* A7, once A5 is answered */
	        {P_EXPECT_LITERAL, NULL, SIZE},
	        {P_EXPECT_RAW, "", 0},
	        {P_SEND, "A6 OK [APPENDUID 7 103:105] ok\r\nA7 OK [APPENDUID 7 106] ok\r\n", 0},
	};
#undef LARGE_NEXT
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 4);
	describe_inbox(imap, 0, false);
	static const char *names[COUNT] = {"m1", "m2", "m3", "m4", "m5", "m6", "m7"};
	for (size_t i = 0; i < COUNT; i++) {
		struct gw_imap_append m = pattern_message(names[i], SIZE);
		assert_int_equal(api->append(imap, &m, on_result, NULL), GW_OK);
		free((void *)m.data); /* the client keeps its own copy */
	}
	assert_int_equal(api->append_wait(imap), GW_OK);
	assert_string_equal(take_results(), "[m1 ok 7:100][m2 ok 7:101][m3 ok 7:102][m4 ok 7:103]"
	                                    "[m5 ok 7:104][m6 ok 7:105][m7 ok 7:106]");
	finish(imap);
}

static void test_multiappend_resent_messages_never_inside_an_open_command(void **state)
{
	(void)state;
	/* A server that does not name itself gets the waiting way. The refusal of
	 * a full group (64 messages, A3) arrives while the client waits for the
	 * "+" of the next group's second message (A4). A3's messages go again one
	 * by one, but only once A4 is ended (its CRLF): a command line inside it
	 * would be read as more of it, and the literal after it as commands. */
	enum { GROUP = 64 /* GROUP_MAX_MESSAGES */ };
	static struct peer_step steps[8 + 4 * GROUP + 16];
	static char answers[GROUP * 48 + 64];
	size_t n = 0, used = 0;
	const struct peer_step head[] = {
	        LOGIN_WITH("LITERAL+ UIDPLUS MULTIAPPEND"),
	        SELECT_STEPS("(\\Seen)"),
	        {P_EXPECT, "APPEND \"INBOX\" () {1+}", 0},
	};
	for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++)
		steps[n++] = head[i];
	for (int i = 1; i < GROUP; i++) {
		steps[n++] = (struct peer_step){P_EXPECT_RAW, "x () {1}", 0};
		steps[n++] = (struct peer_step){P_SEND, "+ go\r\n", 0};
	}
	steps[n++] = (struct peer_step){P_EXPECT_RAW, "x", 0}; /* A3 ends: full */
	steps[n++] = (struct peer_step){P_EXPECT, "APPEND \"INBOX\" () {1+}", 0};
	steps[n++] = (struct peer_step){P_EXPECT_RAW, "y () {1}", 0};
	steps[n++] = (struct peer_step){P_SEND, "A3 NO [LIMIT] refused\r\n+ go\r\n", 0};
	steps[n++] = (struct peer_step){P_EXPECT_RAW, "y", 0}; /* A4 ends before the resends */
	used += (size_t)snprintf(answers, sizeof(answers), "A4 OK [APPENDUID 7 164:165] ok\r\n");
	for (int i = 0; i < GROUP; i++) {
		steps[n++] = (struct peer_step){P_EXPECT, "APPEND \"INBOX\" () {1+}", 0};
		steps[n++] = (struct peer_step){P_EXPECT_RAW, "x", 0};
		used += (size_t)snprintf(answers + used, sizeof(answers) - used,
		                         "A%d OK [APPENDUID 7 %d] ok\r\n", 5 + i, 100 + i);
	}
	steps[n++] = (struct peer_step){P_SEND, answers, 0};
	steps[n++] = (struct peer_step){P_EXPECT, "APPEND \"INBOX\" () {1+}", 0};
	steps[n++] = (struct peer_step){P_EXPECT_RAW, "y", 0};
	steps[n++] = (struct peer_step){P_SEND, "$T OK [APPENDUID 7 166] ok\r\n", 0};
	struct gw_imap *imap = open_session(steps, n, 4);
	describe_inbox(imap, 0, false);
	struct gw_buf want = {0};
	gw_buf_puts(&want, "[y1 ok 7:164][y2 ok 7:165]");
	for (int i = 0; i < GROUP; i++) {
		struct gw_imap_append m = message("x", "x");
		assert_int_equal(api->append(imap, &m, on_result, NULL), GW_OK);
		gw_buf_printf(&want, "[x ok 7:%d]", 100 + i);
	}
	gw_buf_puts(&want, "[y3 ok 7:166]");
	struct gw_imap_append y1 = message("y1", "y");
	struct gw_imap_append y2 = message("y2", "y");
	struct gw_imap_append y3 = message("y3", "y");
	assert_int_equal(api->append(imap, &y1, on_result, NULL), GW_OK);
	assert_int_equal(api->append(imap, &y2, on_result, NULL), GW_OK);
	assert_int_equal(api->append(imap, &y3, on_result, NULL), GW_OK);
	assert_int_equal(api->append_wait(imap), GW_OK);
	assert_string_equal(take_results(), want.data);
	gw_buf_free(&want);
	finish(imap);
}

/* ---- synchronising literals ---- */

static void test_synchronising_literal(void **state)
{
	(void)state;
	/* No LITERAL+: each APPEND waits for "+"; a reply to an earlier APPEND may
	 * come first; a tagged NO instead of "+" refuses this message at once. */
	const struct peer_step steps[] = {
	        LOGIN_WITH("UIDPLUS"),
	        SELECT_STEPS("(\\Seen \\*)"),
	        {P_EXPECT, "APPEND \"INBOX\" (\\Seen kw) {5}", 0},
	        {P_SEND, "+ go ahead\r\n", 0},
	        {P_EXPECT_RAW, "first", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {6}", 0},
	        {P_SEND, "A3 OK [APPENDUID 7 100] done\r\n+ ready\r\n", 0},
	        {P_EXPECT_RAW, "second", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {5}", 0},
	        {P_SEND, "A5 NO [LIMIT] too many messages\r\n", 0},
	        {P_SEND, "A4 OK done\r\n", 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 4);
	describe_inbox(imap, 0, true);
	const char *keywords[] = {"kw"};
	struct gw_imap_append m1 = message("m1", "first");
	m1.flags = GW_FLAG_SEEN;
	m1.keywords = keywords;
	m1.keyword_count = 1;
	struct gw_imap_append m2 = message("m2", "second");
	struct gw_imap_append m3 = message("m3", "third");
	assert_int_equal(api->append(imap, &m1, on_result, NULL), GW_OK);
	assert_int_equal(api->append(imap, &m2, on_result, NULL), GW_OK);
	assert_string_equal(take_results(), "[m1 ok 7:100]");
	assert_int_equal(api->append(imap, &m3, on_result, NULL), GW_ERR_MESSAGE);
	assert_string_equal(ctx.error, "APPEND to \"INBOX\" refused: too many messages");
	assert_int_equal(api->append_wait(imap), GW_OK);
	assert_string_equal(take_results(), "[m2 ok 0:0]");
	finish(imap);
}

static void test_literal_minus(void **state)
{
	(void)state;
	/* LITERAL-: non-synchronising up to 4096 bytes, synchronising above. */
	static char big[4098];
	memset(big, 'x', 4097);
	const struct peer_step steps[] = {
	        LOGIN_WITH("LITERAL-"),
	        SELECT_STEPS("(\\*)"),
	        {P_EXPECT, "APPEND \"INBOX\" () {5+}", 0},
	        {P_EXPECT_RAW, "small", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {4097}", 0},
	        {P_SEND, "+ ok\r\n", 0},
	        {P_EXPECT_RAW, big, 0},
	        {P_SEND, "A3 OK done\r\nA4 OK done\r\n", 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	describe_inbox(imap, 0, true);
	struct gw_imap_append m1 = message("m1", "small");
	struct gw_imap_append m2 = message("m2", big);
	assert_int_equal(api->append(imap, &m1, on_result, NULL), GW_OK);
	assert_int_equal(api->append(imap, &m2, on_result, NULL), GW_OK);
	assert_int_equal(api->append_wait(imap), GW_OK);
	assert_string_equal(take_results(), "[m1 ok 0:0][m2 ok 0:0]");
	finish(imap);
}

/* ---- refusals ---- */

static void test_refusals_mapped(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        LOGIN_WITH("LITERAL+"),
	        SELECT_STEPS("(\\*)"),
	        {P_EXPECT, "APPEND \"INBOX\" () {1+}", 0},
	        {P_EXPECT_RAW, "a", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {1+}", 0},
	        {P_EXPECT_RAW, "b", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {1+}", 0},
	        {P_EXPECT_RAW, "c", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {1+}", 0},
	        {P_EXPECT_RAW, "d", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {1+}", 0},
	        {P_EXPECT_RAW, "e", 0},
	        {P_SEND,
	         "A3 NO [OVERQUOTA] Quota exceeded\r\n"
	         "A4 NO [THROTTLED] slow down\r\n"
	         "A5 NO Request is throttled. Suggested Backoff Time: 2500 milliseconds\r\n"
	         "A6 NO [TRYCREATE] no such folder\r\n"
	         "A7 BAD [UNAVAILABLE] try later\r\n",
	         0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 8);
	describe_inbox(imap, 0, true);
	const char *names[] = {"a", "b", "c", "d", "e"};
	for (size_t i = 0; i < 5; i++) {
		struct gw_imap_append m = message(names[i], names[i]);
		assert_int_equal(api->append(imap, &m, on_result, NULL), GW_OK);
	}
	assert_int_equal(api->append_wait(imap), GW_OK);
	assert_string_equal(take_results(),
	                    "[a mailbox 0:0 \"Quota exceeded\"]"
	                    "[b throttled 0:0 \"slow down\"]"
	                    "[c throttled 0:0 retry 2500 \"Request is throttled. Suggested "
	                    "Backoff Time: 2500 milliseconds\"]"
	                    "[d folder 0:0 \"no such folder\"]"
	                    "[e session 0:0 \"try later\"]");
	finish(imap);
}

static void test_appendlimit_refused_before_sending(void **state)
{
	(void)state;
	/* Capability APPENDLIMIT=10: an 11-byte message never goes out. A bare
	 * APPENDLIMIT would mean per-folder limits, read with STATUS. */
	const struct peer_step steps[] = {
	        LOGIN_WITH("LITERAL+ APPENDLIMIT=10"),
	        SELECT_STEPS("(\\*)"),
	        {P_EXPECT, "APPEND \"INBOX\" () {10+}", 0},
	        {P_EXPECT_RAW, "0123456789", 0},
	        {P_SEND, "A3 OK done\r\n", 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	describe_inbox(imap, 10, true);
	struct gw_imap_append big = message("big", "0123456789!");
	struct gw_imap_append fits = message("fits", "0123456789");
	assert_int_equal(api->append(imap, &big, on_result, NULL), GW_ERR_MESSAGE);
	assert_string_equal(ctx.error, "message of 11 bytes is larger than the destination accepts "
	                               "in \"INBOX\" (APPENDLIMIT 10 bytes); not sent");
	assert_int_equal(api->append(imap, &fits, on_result, NULL), GW_OK);
	assert_int_equal(api->append_wait(imap), GW_OK);
	assert_string_equal(take_results(), "[fits ok 0:0]");
	finish(imap);
}

static void test_appendlimit_per_folder(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        LOGIN_WITH("LITERAL+ APPENDLIMIT"),
	        SELECT_STEPS("(\\Seen)"),
	        {P_EXPECT, "STATUS \"INBOX\" (APPENDLIMIT)", 0},
	        {P_SEND, "* STATUS INBOX (APPENDLIMIT 2048)\r\n$T OK done\r\n", 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	describe_inbox(imap, 2048, false);
	finish(imap);
}

/* ---- results arriving during other commands; a lost connection ---- */

static void test_results_during_other_commands(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        LOGIN_WITH("LITERAL+ UIDPLUS"),
	        SELECT_STEPS("(\\*)"),
	        {P_EXPECT, "APPEND \"INBOX\" () {1+}", 0},
	        {P_EXPECT_RAW, "x", 0},
	        {P_EXPECT, "CREATE \"Entw&APw-rfe\"", 0},
	        {P_SEND, "A3 OK [APPENDUID 7 100] done\r\n$T OK created\r\n", 0},
	        {P_EXPECT, "SUBSCRIBE \"Entw&APw-rfe\"", 0},
	        {P_SEND, "$T OK done\r\n", 0},
	        {P_EXPECT, "CREATE \"Sent\"", 0},
	        {P_SEND, "$T NO [ALREADYEXISTS] Mailbox exists\r\n", 0},
	        {P_EXPECT, "CREATE \"bad*name\"", 0},
	        {P_SEND, "$T NO Invalid mailbox name\r\n", 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	describe_inbox(imap, 0, true);
	struct gw_imap_append m = message("m", "x");
	assert_int_equal(api->append(imap, &m, on_result, NULL), GW_OK);
	bool created = false;
	assert_int_equal(api->create(imap, "Entwürfe", &created), GW_OK);
	assert_true(created);
	assert_string_equal(take_results(), "[m ok 7:100]");
	assert_int_equal(api->subscribe(imap, "Entwürfe"), GW_OK);
	assert_int_equal(api->create(imap, "Sent", &created), GW_OK);
	assert_false(created);
	assert_int_equal(api->create(imap, "bad*name", &created), GW_ERR_FOLDER);
	assert_string_equal(ctx.error, "the server refused to create folder \"bad*name\": Invalid "
	                               "mailbox name");
	assert_int_equal(api->append_wait(imap), GW_OK);
	finish(imap);
}

/* ---- several folders prepared at once ---- */

static void test_prepare_folders_pipelined(void **state)
{
	(void)state;
	/* Depth 4: the three CREATEs go out before any answer; SUBSCRIBE only for
	 * the folder CREATE made; SELECT (each with its STATUS, limits differ per
	 * folder) only for the folders that exist, two folders' worth at first and
	 * the third's once the first is answered. A refused name and a SELECT that
	 * fails fail their folder alone. */
	const struct peer_step steps[] = {
	        LOGIN_WITH("LITERAL+ APPENDLIMIT"),
	        {P_EXPECT_RAW, "A2 CREATE \"Entw&APw-rfe\"", 0},
	        {P_EXPECT_RAW, "A3 CREATE \"Sent\"", 0},
	        {P_EXPECT_RAW, "A4 CREATE \"bad*name\"", 0},
	        {P_SEND,
	         "A2 OK created\r\nA3 NO [ALREADYEXISTS] Mailbox exists\r\n"
	         "A4 NO Invalid mailbox name\r\n",
	         0},
	        {P_EXPECT_RAW, "A5 SUBSCRIBE \"Entw&APw-rfe\"", 0},
	        {P_SEND, "A5 OK done\r\n", 0},
	        {P_EXPECT_RAW, "A6 SELECT \"Entw&APw-rfe\"", 0},
	        {P_EXPECT_RAW, "A7 STATUS \"Entw&APw-rfe\" (APPENDLIMIT)", 0},
	        {P_EXPECT_RAW, "A8 SELECT \"Sent\"", 0},
	        {P_EXPECT_RAW, "A9 STATUS \"Sent\" (APPENDLIMIT)", 0},
	        {P_SEND,
	         "* FLAGS (\\Seen)\r\n* OK [PERMANENTFLAGS (\\Seen \\*)] ok\r\n* 0 EXISTS\r\n"
	         "* OK [UIDVALIDITY 11] ok\r\n* OK [UIDNEXT 1] ok\r\nA6 OK [READ-WRITE] done\r\n",
	         0},
	        {P_EXPECT_RAW, "A10 SELECT \"INBOX\"", 0},
	        {P_EXPECT_RAW, "A11 STATUS \"INBOX\" (APPENDLIMIT)", 0},
	        {P_SEND,
	         "* STATUS \"Entw&APw-rfe\" (APPENDLIMIT 2048)\r\nA7 OK done\r\n"
	         "A8 NO [NONEXISTENT] gone\r\nA9 NO [NONEXISTENT] gone\r\n"
	         "* FLAGS (\\Seen)\r\n* OK [PERMANENTFLAGS (\\Seen)] ok\r\n* 3 EXISTS\r\n"
	         "* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 100] ok\r\nA10 OK [READ-WRITE] done\r\n"
	         "* STATUS INBOX (APPENDLIMIT 4096)\r\nA11 OK done\r\n",
	         0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 4);
	const char *names[] = {"Entwürfe", "Sent", "bad*name", "INBOX"};
	struct gw_imap_folder_prep r[4];
	for (size_t i = 0; i < 4; i++)
		r[i] = (struct gw_imap_folder_prep){.struct_size = sizeof(r[i]),
		                                    .folder = names[i],
		                                    .create = i < 3,
		                                    .subscribe = true,
		                                    .info = {.struct_size = sizeof(r[i].info)}};
	assert_int_equal(api->prepare_folders(imap, r, 4), GW_OK);
	assert_int_equal(r[0].status, GW_OK);
	assert_true(r[0].created);
	assert_int_equal(r[0].info.uidvalidity, 11);
	assert_int_equal(r[0].info.append_limit, 2048);
	assert_true(r[0].info.any_keyword);
	assert_int_equal(r[1].status, GW_ERR_FOLDER);
	assert_false(r[1].created);
	assert_string_equal(r[1].error, "cannot select folder \"Sent\": gone");
	assert_int_equal(r[2].status, GW_ERR_FOLDER);
	assert_string_equal(
	        r[2].error,
	        "the server refused to create folder \"bad*name\": Invalid mailbox name");
	assert_int_equal(r[3].status, GW_OK);
	assert_false(r[3].created);
	assert_int_equal(r[3].info.uidvalidity, 7);
	assert_int_equal(r[3].info.uidnext, 100);
	assert_int_equal(r[3].info.exists, 3);
	assert_int_equal(r[3].info.append_limit, 4096);
	assert_false(r[3].info.any_keyword);
	assert_int_equal(r[3].info.permanent_count, 1);
	assert_string_equal(r[3].info.permanent_flags[0], "\\Seen");
	/* What append() must respect was remembered: over the folder's limit, not sent. */
	char big[2050];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	struct gw_imap_append m = message("big", big);
	m.folder = "Entwürfe";
	assert_int_equal(api->append(imap, &m, on_result, NULL), GW_ERR_MESSAGE);
	finish(imap);
}

static void test_connection_lost_with_appends_in_flight(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        LOGIN_WITH("LITERAL+ UIDPLUS"),
	        SELECT_STEPS("(\\*)"),
	        {P_EXPECT, "APPEND \"INBOX\" () {1+}", 0},
	        {P_EXPECT_RAW, "x", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {1+}", 0},
	        {P_EXPECT_RAW, "y", 0},
	        {P_SEND, "A3 OK [APPENDUID 7 100] done\r\n* BYE shutting down\r\n", 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	describe_inbox(imap, 0, true);
	struct gw_imap_append x = message("x", "x"), y = message("y", "y");
	assert_int_equal(api->append(imap, &x, on_result, NULL), GW_OK);
	assert_int_equal(api->append(imap, &y, on_result, NULL), GW_OK);
	assert_int_equal(api->append_wait(imap), GW_ERR_SESSION);
	/* y's fate is unknown: no result for it. */
	assert_string_equal(take_results(), "[x ok 7:100]");
	assert_int_equal(api->append_wait(imap), GW_OK); /* nothing left in flight */
	finish(imap);
}

/* ---- namespace, search, metadata ---- */

static void test_namespace(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        LOGIN_WITH("NAMESPACE"),
	        {P_EXPECT, "NAMESPACE", 0},
	        {P_SEND,
	         "* NAMESPACE ((\"INBOX.\" \".\")) ((\"user.\" \".\")) NIL\r\n$T OK done\r\n", 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	struct gw_imap_namespace ns = {.struct_size = sizeof(ns)};
	assert_int_equal(api->get_namespace(imap, &ns), GW_OK);
	assert_string_equal(ns.prefix, "INBOX.");
	assert_int_equal(ns.delimiter, '.');
	assert_int_equal(api->get_namespace(imap, &ns), GW_OK); /* remembered: no command */
	finish(imap);
}

static void test_namespace_without_extension(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        LOGIN_WITH("LITERAL+"),
	        {P_EXPECT, "LIST \"\" \"\"", 0},
	        {P_SEND, "* LIST (\\Noselect) \"/\" \"\"\r\n$T OK done\r\n", 0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	struct gw_imap_namespace ns = {.struct_size = sizeof(ns)};
	assert_int_equal(api->get_namespace(imap, &ns), GW_OK);
	assert_string_equal(ns.prefix, "");
	assert_int_equal(ns.delimiter, '/');
	finish(imap);
}

static void on_uid(void *arg, uint32_t uid)
{
	gw_buf_printf(arg, "%u ", uid);
}

static gw_status on_meta(void *arg, const struct gw_message_meta *m)
{
	gw_buf_printf(arg, "[%u %llu %lld %d]", m->uid, (unsigned long long)m->size,
	              (long long)m->internal_date, m->tz_offset_min);
	return GW_OK;
}

static void test_search_and_fetch_meta(void **state)
{
	(void)state;
	const struct peer_step steps[] = {
	        LOGIN_WITH("LITERAL+"),
	        SELECT_STEPS("(\\*)"),
	        {P_EXPECT, "UID SEARCH HEADER Message-ID \"<a\\\"b@x>\"", 0},
	        {P_SEND, "* SEARCH 4 9\r\n$T OK done\r\n", 0},
	        {P_EXPECT, "UID FETCH 4,9 (UID RFC822.SIZE INTERNALDATE FLAGS)", 0},
	        {P_SEND,
	         "* 1 FETCH (UID 4 RFC822.SIZE 12 INTERNALDATE " DATE_TEXT " FLAGS ())\r\n"
	         "* 2 FETCH (FLAGS (\\Seen) UID 9 RFC822.SIZE 30 INTERNALDATE \"01-Jan-2020 "
	         "00:00:00 +0000\")\r\n$T OK done\r\n",
	         0},
	};
	struct gw_imap *imap = open_session(PEER_STEPS(steps), 0);
	describe_inbox(imap, 0, true);
	struct gw_buf out = {0};
	gw_buf_append(&out, "", 0);
	assert_int_equal(api->search(imap, "HEADER Message-ID \"<a\\\"b@x>\"", on_uid, &out),
	                 GW_OK);
	assert_string_equal(out.data, "4 9 ");
	const uint32_t uids[] = {4, 9};
	gw_buf_reset(&out);
	assert_int_equal(api->fetch_meta(imap, uids, 2, on_meta, &out), GW_OK);
	assert_string_equal(out.data, "[4 12 837596665 -420][9 30 1577836800 0]");
	gw_buf_free(&out);
	finish(imap);
}

/* ---- INTERNALDATE written in the message's own zone ---- */

static void test_format_internaldate(void **state)
{
	(void)state;
	char out[32];
	assert_true(gw_imap_format_internaldate(DATE_EPOCH, -420, out));
	assert_string_equal(out, "17-Jul-1996 02:44:25 -0700");
	assert_true(gw_imap_format_internaldate(0, 0, out));
	assert_string_equal(out, "01-Jan-1970 00:00:00 +0000");
	assert_true(gw_imap_format_internaldate(1709164800, 330, out)); /* leap day, +05:30 */
	assert_string_equal(out, "29-Feb-2024 05:30:00 +0530");
	assert_true(gw_imap_format_internaldate(-1, -60, out));
	assert_string_equal(out, "31-Dec-1969 22:59:59 -0100");
	assert_false(gw_imap_format_internaldate(253402300800LL, 0, out)); /* year 10000 */
	assert_false(gw_imap_format_internaldate(0, 1440, out));
	/* Round trip through the parser, zone kept. */
	int64_t epoch;
	int32_t zone;
	assert_true(gw_imap_format_internaldate(1234567890, 765, out));
	assert_true(gw_imap_parse_internaldate(out, &epoch, &zone));
	assert_int_equal(epoch, 1234567890);
	assert_int_equal(zone, 765);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(test_literal_plus_pipelined, setup),
	        cmocka_unit_test_setup(test_large_literal_read_from_its_file, setup),
	        cmocka_unit_test_setup(test_multiappend_one_command_per_folder, setup),
	        cmocka_unit_test_setup(test_multiappend_from_an_abi_1_0_caller, setup),
	        cmocka_unit_test_setup(test_multiappend_refused_goes_again_alone, setup),
	        cmocka_unit_test_setup(test_multiappend_off_when_round_trips_are_slow, setup),
	        cmocka_unit_test_setup(test_multiappend_ahead_into_dovecot, setup),
	        cmocka_unit_test_setup(test_multiappend_groups_large_messages_without_waiting,
	                               setup),
	        cmocka_unit_test_setup(
	                test_multiappend_resent_messages_never_inside_an_open_command, setup),
	        cmocka_unit_test_setup(test_synchronising_literal, setup),
	        cmocka_unit_test_setup(test_literal_minus, setup),
	        cmocka_unit_test_setup(test_refusals_mapped, setup),
	        cmocka_unit_test_setup(test_appendlimit_refused_before_sending, setup),
	        cmocka_unit_test_setup(test_appendlimit_per_folder, setup),
	        cmocka_unit_test_setup(test_results_during_other_commands, setup),
	        cmocka_unit_test_setup(test_prepare_folders_pipelined, setup),
	        cmocka_unit_test_setup(test_connection_lost_with_appends_in_flight, setup),
	        cmocka_unit_test_setup(test_namespace, setup),
	        cmocka_unit_test_setup(test_namespace_without_extension, setup),
	        cmocka_unit_test_setup(test_search_and_fetch_meta, setup),
	        cmocka_unit_test(test_format_internaldate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
