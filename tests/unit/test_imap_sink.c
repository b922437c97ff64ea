/* The imap sink plugin, loaded as the real plugin with the core's host table,
 * against a scripted IMAP peer on 127.0.0.1 (tls: none): a refusal of a
 * pipelined APPEND that arrives after append() returned is reported for that
 * item alone (flush succeeds for the others); APPENDLIMIT (server-wide and
 * per folder) is offered to the core as the folder's size limit; lookup after
 * a crash matches by Message-ID and size, compares bytes when that is not
 * enough, and never answers with a destination UID the state records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "loader.h"
#include "util.h"
#include "log.h"
#include "optbind.h"

#include "test_imap_peer.h"

static const struct gw_loaded_plugin *plugin;
static struct gw_loader loader;
static struct peer peer;

static int load_plugin(void **unused)
{
	(void)unused;
	char *err = NULL;
	gw_loader_init(&loader, NULL, 0, NULL, 0);
	plugin = gw_loader_load_file(&loader, GW_BUILD_PLUGIN_DIR "/gw-sink-imap.so", &err);
	if (!plugin)
		fail_msg("loading the plugin: %s", err);
	assert_int_equal(plugin->desc.kind, GW_PLUGIN_SINK);
	assert_non_null(plugin->sink.size_limit);
	return 0;
}

static int unload_plugin(void **unused)
{
	(void)unused;
	gw_loader_free(&loader);
	return 0;
}

/* One configured plugin instance with one open session. */
struct fixture {
	void *config;
	struct gw_optstore *store;
	struct gw_ctx ctx;
	void *state;
	void *session;
};

static const struct gw_option *find_option(const char *name)
{
	for (const struct gw_option *o = plugin->desc.options; o && o->name; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	fail_msg("no option %s", name);
	return NULL;
}

static void configure(struct fixture *f)
{
	char port[16];
	snprintf(port, sizeof(port), "%u", peer.port);
	const char *given[][2] = {{"host", "127.0.0.1"}, {"port", port},         {"tls", "none"},
	                          {"user", "user"},      {"password", "secret"}, {"timeout", "5s"}};
	f->config = calloc(1, plugin->desc.config_size);
	f->store = gw_optstore_new(NULL);
	char *err = NULL;
	for (const struct gw_option *o = plugin->desc.options; o && o->name; o++) {
		const char *text = o->default_value;
		for (size_t i = 0; i < sizeof(given) / sizeof(given[0]); i++)
			if (strcmp(given[i][0], o->name) == 0)
				text = given[i][1];
		if (text && !gw_option_parse_value(o, text, f->config, f->store, &err))
			fail_msg("option %s: %s", o->name, err);
	}
	assert_non_null(find_option("pipeline_depth"));
}

static const struct gw_mailbox alice = {.struct_size = sizeof(struct gw_mailbox),
                                        .email = "alice@example.org",
                                        .username = "alice"};

/* Start the peer with @p steps, then init and open the sink against it. */
static struct fixture *start(const struct peer_step *steps, size_t count)
{
	peer_start(&peer, steps, count);
	struct fixture *f = calloc(1, sizeof(*f));
	configure(f);
	assert_int_equal(plugin->sink.init(gw_host_table(), &f->ctx, f->config, &f->state), GW_OK);
	gw_status rc = plugin->sink.open(f->state, &f->ctx, &alice, &f->session);
	if (rc != GW_OK)
		fail_msg("open: %s (peer: %s)", f->ctx.error, peer.error);
	return f;
}

static void stop(struct fixture *f)
{
	plugin->sink.close(f->session);
	plugin->sink.fini(f->state);
	gw_optstore_free(f->store);
	free(f->config);
	free(f);
	const char *deviation = peer_finish(&peer);
	if (deviation[0])
		fail_msg("peer: %s", deviation);
}

static gw_status ensure_named(struct fixture *f, const char *name, enum gw_folder_role role,
                              void **folder, char id[GW_SINK_ID_MAX])
{
	const char *components[] = {name};
	struct gw_folder_path path = {
	        .struct_size = sizeof(path), .count = 1, .components = components, .role = role};
	return plugin->sink.ensure_folder(f->session, &path, folder, id);
}

static void *ensure_inbox(struct fixture *f)
{
	void *folder = NULL;
	char id[GW_SINK_ID_MAX];
	gw_status rc = ensure_named(f, "INBOX", GW_ROLE_INBOX, &folder, id);
	if (rc != GW_OK)
		fail_msg("ensure_folder: %s (peer: %s)", f->ctx.error, peer.error);
	assert_string_equal(id, "INBOX");
	return folder;
}

/* Greeting with @p caps, LOGIN (A1), the root delimiter (A2), LIST (A3). */
#define OPEN_STEPS(caps)                                                                           \
	{P_SEND, "* OK [CAPABILITY IMAP4rev1 " caps "] hi\r\n", 0},                                \
	        {P_EXPECT, "LOGIN \"user\" \"secret\"", 0},                                        \
	        {P_SEND, "$T OK [CAPABILITY IMAP4rev1 " caps "] in\r\n", 0},                       \
	        {P_EXPECT, "LIST \"\" \"\"", 0},                                                   \
	        {P_SEND, "* LIST (\\Noselect) \"/\" \"\"\r\n$T OK done\r\n", 0},                   \
	        {P_EXPECT, "LIST \"\" \"*\"", 0},                                                  \
	{                                                                                          \
		P_SEND, "* LIST (\\HasNoChildren) \"/\" INBOX\r\n$T OK done\r\n", 0                \
	}

#define SELECT_INBOX_AT(uidnext)                                                                   \
	{P_EXPECT, "SELECT \"INBOX\"", 0},                                                         \
	{                                                                                          \
		P_SEND,                                                                            \
		        "* FLAGS (\\Seen)\r\n* OK [PERMANENTFLAGS (\\Seen \\*)] ok\r\n"            \
		        "* 3 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT " uidnext          \
		        "] ok\r\n"                                                                 \
		        "$T OK [READ-WRITE] done\r\n",                                             \
		        0                                                                          \
	}
#define SELECT_INBOX SELECT_INBOX_AT("100")

/* A message to hand to the sink, with the fields the core fills. */
struct msg {
	struct gw_message_meta meta;
	struct gw_message message;
	struct gw_sink_outcome outcome;
	struct gw_sink_item item;
	char sha[65];
	char id[GW_SINK_ID_MAX];
};

static void sha256_hex(const char *data, char out[65])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_Digest(data, strlen(data), digest, &len, EVP_sha256(), NULL);
	for (unsigned i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static void make_msg(struct msg *m, const char *bytes, const char *message_id)
{
	memset(m, 0, sizeof(*m));
	m->meta = (struct gw_message_meta){.struct_size = sizeof(m->meta),
	                                   .uid = 1,
	                                   .size = strlen(bytes),
	                                   .message_id = message_id};
	sha256_hex(bytes, m->sha);
	m->message = (struct gw_message){.struct_size = sizeof(m->message),
	                                 .meta = &m->meta,
	                                 .data = (const unsigned char *)bytes,
	                                 .size = strlen(bytes),
	                                 .sha256_hex = m->sha};
	m->outcome = (struct gw_sink_outcome){.struct_size = sizeof(m->outcome)};
	m->item = (struct gw_sink_item){.struct_size = sizeof(m->item),
	                                .message = &m->message,
	                                .origin_key = "0123456789abcdef01234567",
	                                .outcome = &m->outcome};
}

/* ---- folders prepared together ---- */

static void test_prepared_folders_answer_ensure(void **unused)
{
	(void)unused;
	/* The core names four folders; two land in INBOX, which exists: it is only
	 * selected. The two new ones are created in one go, the one the server
	 * refuses fails at its ensure_folder with the server's text, and ensure
	 * sends nothing more. */
	const struct peer_step steps[] = {
	        OPEN_STEPS("LITERAL+ UIDPLUS"),
	        {P_EXPECT_RAW, "A4 CREATE \"Projects\"", 0},
	        {P_EXPECT_RAW, "A5 CREATE \"bad*name\"", 0},
	        {P_SEND, "A4 OK created\r\nA5 NO Invalid mailbox name\r\n", 0},
	        {P_EXPECT_RAW, "A6 SUBSCRIBE \"Projects\"", 0},
	        {P_SEND, "A6 OK done\r\n", 0},
	        {P_EXPECT_RAW, "A7 SELECT \"INBOX\"", 0},
	        {P_EXPECT_RAW, "A8 SELECT \"Projects\"", 0},
	        {P_SEND,
	         "* FLAGS (\\Seen)\r\n* OK [PERMANENTFLAGS (\\Seen \\*)] ok\r\n* 3 EXISTS\r\n"
	         "* OK [UIDVALIDITY 7] ok\r\nA7 OK [READ-WRITE] done\r\n"
	         "* FLAGS (\\Seen)\r\n* OK [PERMANENTFLAGS (\\Seen \\*)] ok\r\n* 0 EXISTS\r\n"
	         "* OK [UIDVALIDITY 9] ok\r\nA8 OK [READ-WRITE] done\r\n",
	         0},
	};
	struct fixture *f = start(PEER_STEPS(steps));
	const char *names[] = {"INBOX", "Inbox", "Projects", "bad*name"};
	const char *components[4][1];
	struct gw_folder_path paths[4];
	const struct gw_folder_path *named[4];
	for (size_t i = 0; i < 4; i++) {
		components[i][0] = names[i];
		paths[i] = (struct gw_folder_path){.struct_size = sizeof(paths[i]),
		                                   .count = 1,
		                                   .components = components[i],
		                                   .role = i == 0 ? GW_ROLE_INBOX : GW_ROLE_NONE};
		named[i] = &paths[i];
	}
	assert_non_null(plugin->sink.prepare_folders);
	assert_int_equal(plugin->sink.prepare_folders(f->session, named, 4), GW_OK);
	void *inbox = NULL, *inbox2 = NULL, *projects = NULL, *bad = NULL;
	char id[GW_SINK_ID_MAX];
	assert_int_equal(ensure_named(f, "INBOX", GW_ROLE_INBOX, &inbox, id), GW_OK);
	assert_string_equal(id, "INBOX");
	assert_int_equal(ensure_named(f, "Inbox", GW_ROLE_NONE, &inbox2, id), GW_OK);
	assert_ptr_equal(inbox, inbox2);
	assert_int_equal(ensure_named(f, "Projects", GW_ROLE_NONE, &projects, id), GW_OK);
	assert_string_equal(id, "Projects");
	assert_int_equal(ensure_named(f, "bad*name", GW_ROLE_NONE, &bad, id), GW_ERR_FOLDER);
	assert_null(bad);
	assert_string_equal(
	        f->ctx.error,
	        "the server refused to create folder \"bad*name\": Invalid mailbox name");
	stop(f);
}

/* ---- refusals that arrive after append() returned ---- */

static void test_late_refusal_reported_for_its_item(void **unused)
{
	(void)unused;
	/* Three APPENDs in flight; the server refuses the second one only when all
	 * three are out. flush succeeds: the first and third are durable, the
	 * second carries its own refusal. */
	const struct peer_step steps[] = {
	        OPEN_STEPS("LITERAL+ UIDPLUS"),
	        SELECT_INBOX,
	        {P_EXPECT, "APPEND \"INBOX\" () {5+}", 0},
	        {P_EXPECT_RAW, "msg-1", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {5+}", 0},
	        {P_EXPECT_RAW, "msg-2", 0},
	        {P_EXPECT, "APPEND \"INBOX\" () {5+}", 0},
	        {P_EXPECT_RAW, "msg-3", 0},
	        {P_SEND,
	         "A5 OK [APPENDUID 7 101] done\r\nA6 NO [TOOBIG] Mail size is too large\r\n"
	         "A7 OK [APPENDUID 7 102] done\r\n",
	         0},
	};
	struct fixture *f = start(PEER_STEPS(steps));
	void *inbox = ensure_inbox(f);
	struct msg m[3];
	make_msg(&m[0], "msg-1", NULL);
	make_msg(&m[1], "msg-2", NULL);
	make_msg(&m[2], "msg-3", NULL);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(plugin->sink.append(f->session, inbox, &m[i].item, m[i].id),
		                 GW_OK);
	gw_status rc = plugin->sink.flush(f->session);
	if (rc != GW_OK)
		fail_msg("flush: %s", f->ctx.error);
	assert_int_equal(m[0].outcome.status, GW_OK);
	assert_string_equal(m[0].id, "7:101");
	assert_int_equal(m[1].outcome.status, GW_ERR_MESSAGE);
	assert_string_equal(m[1].outcome.reason,
	                    "the destination refused the message: Mail size is too large");
	assert_int_equal(m[2].outcome.status, GW_OK);
	assert_string_equal(m[2].id, "7:102");
	stop(f);
}

/* ---- APPENDLIMIT as the folder's size limit ---- */

static void test_size_limit_server_wide(void **unused)
{
	(void)unused;
	const struct peer_step steps[] = {
	        OPEN_STEPS("LITERAL+ UIDPLUS APPENDLIMIT=60000"),
	        SELECT_INBOX,
	};
	struct fixture *f = start(PEER_STEPS(steps));
	void *inbox = ensure_inbox(f);
	char set_by[GW_SINK_LIMIT_TEXT_MAX];
	assert_int_equal(plugin->sink.size_limit(f->session, inbox, set_by), 60000);
	assert_string_equal(set_by, "destination APPENDLIMIT 60000");
	stop(f);
}

static void test_size_limit_per_folder(void **unused)
{
	(void)unused;
	/* A bare APPENDLIMIT: each folder's limit comes from STATUS. */
	const struct peer_step steps[] = {
	        OPEN_STEPS("LITERAL+ UIDPLUS APPENDLIMIT"),
	        SELECT_INBOX,
	        {P_EXPECT, "STATUS \"INBOX\" (APPENDLIMIT)", 0},
	        {P_SEND, "* STATUS INBOX (APPENDLIMIT 2048)\r\n$T OK done\r\n", 0},
	};
	struct fixture *f = start(PEER_STEPS(steps));
	void *inbox = ensure_inbox(f);
	char set_by[GW_SINK_LIMIT_TEXT_MAX];
	assert_int_equal(plugin->sink.size_limit(f->session, inbox, set_by), 2048);
	assert_string_equal(set_by, "destination APPENDLIMIT 2048");
	stop(f);
}

static void test_no_size_limit(void **unused)
{
	(void)unused;
	const struct peer_step steps[] = {
	        OPEN_STEPS("LITERAL+ UIDPLUS"),
	        SELECT_INBOX,
	};
	struct fixture *f = start(PEER_STEPS(steps));
	void *inbox = ensure_inbox(f);
	char set_by[GW_SINK_LIMIT_TEXT_MAX] = "x";
	assert_int_equal(plugin->sink.size_limit(f->session, inbox, set_by), 0);
	assert_string_equal(set_by, "");
	stop(f);
}

/* ---- lookup after a crash ---- */

static bool look_up(struct fixture *f, void *folder, struct msg *m, const char *const *recorded,
                    size_t recorded_count)
{
	m->item.recorded_ids = recorded;
	m->item.recorded_count = recorded_count;
	bool found = false;
	gw_status rc = plugin->sink.lookup(f->session, folder, &m->item, &found, m->id);
	if (rc != GW_OK)
		fail_msg("lookup: %s (peer: %s)", f->ctx.error, peer.error);
	return found;
}

static void test_lookup_skips_recorded_uids(void **unused)
{
	(void)unused;
	/* Two copies with this Message-ID and size; the state records UID 5 for
	 * another source message, so this one is UID 9, without reading bytes. */
	const struct peer_step steps[] = {
	        OPEN_STEPS("LITERAL+ UIDPLUS"),
	        SELECT_INBOX,
	        SELECT_INBOX,
	        SELECT_INBOX, /* UIDNEXT held still: no APPEND of an earlier run lands */
	        {P_EXPECT, "UID SEARCH LARGER 9 SMALLER 11 HEADER Message-ID \"<a@b>\"", 0},
	        {P_SEND, "* SEARCH 9 5\r\n$T OK done\r\n", 0},
	        {P_EXPECT, "UID SEARCH LARGER 9 SMALLER 11 HEADER Message-ID \"<a@b>\"", 0},
	        {P_SEND, "* SEARCH 9 5\r\n$T OK done\r\n", 0},
	};
	struct fixture *f = start(PEER_STEPS(steps));
	void *inbox = ensure_inbox(f);
	struct msg m;
	make_msg(&m, "duplicate!", "<a@b>");
	const char *recorded[] = {"7:5"};
	assert_true(look_up(f, inbox, &m, recorded, 1));
	assert_string_equal(m.id, "7:9");
	/* Both copies are taken now (one by the state, one by this session). */
	struct msg again;
	make_msg(&again, "duplicate!", "<a@b>");
	assert_false(look_up(f, inbox, &again, recorded, 1));
	stop(f);
}

static void test_lookup_duplicates_by_bytes(void **unused)
{
	(void)unused;
	/* No Message-ID: the size finds three candidates, the bytes decide. The
	 * first lookup takes UID 4 (UID 3 has other bytes of the same size); the
	 * second, told the state now records 7:4, takes UID 6; a third finds none. */
	const struct peer_step steps[] = {
	        OPEN_STEPS("LITERAL+ UIDPLUS"),
	        SELECT_INBOX,
	        SELECT_INBOX,
	        SELECT_INBOX, /* UIDNEXT held still: no APPEND of an earlier run lands */
	        {P_EXPECT, "UID SEARCH LARGER 4 SMALLER 6", 0},
	        {P_SEND, "* SEARCH 3 4 6\r\n$T OK done\r\n", 0},
	        {P_EXPECT, "UID FETCH 3:4,6 (BODY.PEEK[])", 0},
	        {P_SEND,
	         "* 1 FETCH (UID 3 BODY[] {5}\r\nother)\r\n"
	         "* 2 FETCH (UID 4 BODY[] {5}\r\nsame!)\r\n"
	         "* 3 FETCH (UID 6 BODY[] {5}\r\nsame!)\r\nA8 OK done\r\n",
	         0},
	        {P_EXPECT, "UID SEARCH LARGER 4 SMALLER 6", 0},
	        {P_SEND, "* SEARCH 3 4 6\r\n$T OK done\r\n", 0},
	        {P_EXPECT, "UID FETCH 3,6 (BODY.PEEK[])", 0},
	        {P_SEND,
	         "* 1 FETCH (UID 3 BODY[] {5}\r\nother)\r\n"
	         "* 3 FETCH (UID 6 BODY[] {5}\r\nsame!)\r\nA10 OK done\r\n",
	         0},
	        {P_EXPECT, "UID SEARCH LARGER 4 SMALLER 6", 0},
	        {P_SEND, "* SEARCH 3 4 6\r\n$T OK done\r\n", 0},
	        {P_EXPECT, "UID FETCH 3 (BODY.PEEK[])", 0},
	        {P_SEND, "* 1 FETCH (UID 3 BODY[] {5}\r\nother)\r\n$T OK done\r\n", 0},
	};
	struct fixture *f = start(PEER_STEPS(steps));
	void *inbox = ensure_inbox(f);
	struct msg first, second, third;
	make_msg(&first, "same!", NULL);
	make_msg(&second, "same!", NULL);
	make_msg(&third, "same!", NULL);
	assert_true(look_up(f, inbox, &first, NULL, 0));
	assert_string_equal(first.id, "7:4");
	const char *recorded[] = {"7:4"};
	assert_true(look_up(f, inbox, &second, recorded, 1));
	assert_string_equal(second.id, "7:6");
	const char *both[] = {"7:4", "7:6"};
	assert_false(look_up(f, inbox, &third, both, 2));
	stop(f);
}

static void test_lookup_waits_for_an_earlier_session_to_land(void **unused)
{
	(void)unused;
	/* A killed run's session still stores messages after this one connected:
	 * UIDNEXT moves from 100 to 103 between two SELECTs, then holds still,
	 * and only then is the message looked up (and found among the new). */
	const struct peer_step steps[] = {
	        OPEN_STEPS("LITERAL+ UIDPLUS"),
	        SELECT_INBOX,
	        SELECT_INBOX_AT("100"),
	        SELECT_INBOX_AT("103"),
	        SELECT_INBOX_AT("103"),
	        {P_EXPECT, "UID SEARCH LARGER 9 SMALLER 11 HEADER Message-ID \"<a@b>\"", 0},
	        {P_SEND, "* SEARCH 102\r\n$T OK done\r\n", 0},
	};
	struct fixture *f = start(PEER_STEPS(steps));
	void *inbox = ensure_inbox(f);
	struct msg m;
	make_msg(&m, "landed at!", "<a@b>");
	int64_t started = gw_monotonic_us();
	assert_true(look_up(f, inbox, &m, NULL, 0));
	assert_string_equal(m.id, "7:102");
	assert_true(gw_monotonic_us() - started >= 2 * 250000); /* two pauses of 250 ms */
	stop(f);
}

static void test_lookup_without_bytes_or_message_id_finds_nothing(void **unused)
{
	(void)unused;
	/* The size alone proves nothing: no command is sent. */
	const struct peer_step steps[] = {
	        OPEN_STEPS("LITERAL+ UIDPLUS"),
	        SELECT_INBOX,
	};
	struct fixture *f = start(PEER_STEPS(steps));
	void *inbox = ensure_inbox(f);
	struct msg m;
	make_msg(&m, "no id here", NULL);
	m.message.data = NULL;
	m.message.sha256_hex = NULL;
	assert_false(look_up(f, inbox, &m, NULL, 0));
	stop(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_prepared_folders_answer_ensure),
	        cmocka_unit_test(test_late_refusal_reported_for_its_item),
	        cmocka_unit_test(test_size_limit_server_wide),
	        cmocka_unit_test(test_size_limit_per_folder),
	        cmocka_unit_test(test_no_size_limit),
	        cmocka_unit_test(test_lookup_skips_recorded_uids),
	        cmocka_unit_test(test_lookup_duplicates_by_bytes),
	        cmocka_unit_test(test_lookup_waits_for_an_earlier_session_to_land),
	        cmocka_unit_test(test_lookup_without_bytes_or_message_id_finds_nothing),
	};
	return cmocka_run_group_tests(tests, load_plugin, unload_plugin);
}
