/* A sink that checks the core's promise about its state (state.h,
 * test_migrate_pending.py): every message is recorded in the state before the
 * sink is given it, so a crash at any point leaves nothing in the sink that
 * the next run would not look up. At each append() it reads the state through
 * a read-only SQLite connection of its own (committed rows only: what a crash
 * would leave). Built twice, for the core's two ways of committing a batch:
 * probe-background flushes in the background (flush_begin/flush_wait, as the
 * maildir sink), probe-direct with flush() alone (as the imap sink). It keeps
 * no mail, and at close appends to its `log` file one line per session,
 * "checked N missing M flushes F", then each missing origin key. */
#include <godwit/plugin.h>

#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PROBE_BACKGROUND
#error "build with -DPROBE_BACKGROUND=0 or 1"
#endif

struct probe_config {
	const char *state; /* the profile's state file */
	const char *log;
};

static const struct gw_option probe_options[] = {
        {.name = "state",
         .type = GW_OPT_STRING,
         .flags = GW_OPT_REQUIRED,
         .offset = offsetof(struct probe_config, state),
         .description = "The state file the core writes."},
        {.name = "log",
         .type = GW_OPT_STRING,
         .flags = GW_OPT_REQUIRED,
         .offset = offsetof(struct probe_config, log),
         .description = "Where each session's findings are appended."},
        GW_OPTION_END,
};

struct probe {
	const struct gw_host *host;
	const struct probe_config *cfg;
};

struct probe_session {
	const struct probe *probe;
	sqlite3 *db;
	sqlite3_stmt *find;
	unsigned long checked, flushes, ids;
	char **missing;
	size_t missing_count;
};

static gw_status probe_init(const struct gw_host *host, struct gw_ctx *ctx, const void *config,
                            void **state)
{
	(void)ctx;
	struct probe *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return GW_ERR_CONFIG;
	*p = (struct probe){.host = host, .cfg = config};
	*state = p;
	return GW_OK;
}

static void probe_fini(void *state)
{
	free(state);
}

static gw_status probe_open(void *state, struct gw_ctx *ctx, const struct gw_mailbox *mailbox,
                            void **session)
{
	(void)ctx;
	(void)mailbox;
	struct probe_session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return GW_ERR_SESSION;
	s->probe = state;
	*session = s;
	return GW_OK;
}

static gw_status probe_ensure_folder(void *session, const struct gw_folder_path *path,
                                     void **folder, char folder_id[GW_SINK_ID_MAX])
{
	(void)session;
	size_t len = 0;
	folder_id[0] = '\0';
	for (size_t i = 0; i < path->count; i++)
		len += (size_t)snprintf(folder_id + len,
		                        len < GW_SINK_ID_MAX ? GW_SINK_ID_MAX - len : 0, "%s%s",
		                        i > 0 ? "/" : "", path->components[i]);
	*folder = session; /* any handle will do: the probe keeps no folders */
	return GW_OK;
}

/* Is @p key in the state's committed rows? An unreadable state counts as no. */
static bool recorded(struct probe_session *s, const char *key)
{
	if (s->db == NULL) {
		if (sqlite3_open_v2(s->probe->cfg->state, &s->db, SQLITE_OPEN_READONLY, NULL) !=
		            SQLITE_OK ||
		    sqlite3_busy_timeout(s->db, 5000) != SQLITE_OK ||
		    sqlite3_prepare_v2(s->db,
		                       /* A row, or a record of a batch in flight: its packed
		                        * records hold the key with its NUL (flight_pack.h). */
		                       "SELECT 1 FROM messages WHERE origin_key = ?1 UNION ALL "
		                       "SELECT 1 FROM flights WHERE instr(records, ?2) > 0",
		                       -1, &s->find, NULL) != SQLITE_OK)
			return false;
	}
	sqlite3_reset(s->find);
	sqlite3_bind_text(s->find, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(s->find, 2, key, (int)strlen(key) + 1, SQLITE_TRANSIENT);
	return sqlite3_step(s->find) == SQLITE_ROW;
}

static void check(struct probe_session *s, const char *key)
{
	s->checked++;
	if (recorded(s, key))
		return;
	char **grown = realloc(s->missing, (s->missing_count + 1) * sizeof(*grown));
	if (grown == NULL)
		return;
	s->missing = grown;
	s->missing[s->missing_count++] = strdup(key);
}

static gw_status probe_append(void *session, void *folder, const struct gw_sink_item *item,
                              char message_id[GW_SINK_ID_MAX])
{
	(void)folder;
	struct probe_session *s = session;
	snprintf(message_id, GW_SINK_ID_MAX, "%lu", ++s->ids);
	check(s, item->origin_key);
	return GW_OK;
}

static gw_status probe_flush(void *session)
{
	struct probe_session *s = session;
	s->flushes++;
	return GW_OK;
}

#if PROBE_BACKGROUND
static gw_status probe_flush_wait(void *session)
{
	(void)session;
	return GW_OK;
}
#endif

static void probe_close(void *session)
{
	struct probe_session *s = session;
	FILE *log = fopen(s->probe->cfg->log, "a");
	if (log != NULL) {
		fprintf(log, "checked %lu missing %zu flushes %lu\n", s->checked, s->missing_count,
		        s->flushes);
		for (size_t i = 0; i < s->missing_count; i++)
			fprintf(log, "missing %s\n", s->missing[i] ? s->missing[i] : "?");
		fclose(log);
	}
	for (size_t i = 0; i < s->missing_count; i++)
		free(s->missing[i]);
	free(s->missing);
	sqlite3_finalize(s->find);
	sqlite3_close(s->db);
	free(s);
}

static const struct gw_sink_ops probe_ops = {
        .struct_size = sizeof(struct gw_sink_ops),
        .init = probe_init,
        .fini = probe_fini,
        .open = probe_open,
        .ensure_folder = probe_ensure_folder,
        .append = probe_append,
        .flush = probe_flush,
        .close = probe_close,
#if PROBE_BACKGROUND
        .flush_begin = probe_flush, /* nothing is kept: nothing to wait for */
        .flush_wait = probe_flush_wait,
#endif
};

static const struct gw_plugin probe_plugin = {
        GW_PLUGIN_HEADER,
        .kind = GW_PLUGIN_SINK,
#if PROBE_BACKGROUND
        .name = "probe-background",
#else
        .name = "probe-direct",
#endif
        .capabilities = GW_CAP_PARALLEL_SESSIONS,
        .version = "1.0.0",
        .description = "Checks that the core records a message before the sink can keep it",
        .license = "MIT",
        .options = probe_options,
        .config_size = sizeof(struct probe_config),
        .sink = &probe_ops,
};

#if PROBE_BACKGROUND
GW_PLUGIN_DEFINE(sink, probe_background, probe_plugin)
#else
GW_PLUGIN_DEFINE(sink, probe_direct, probe_plugin)
#endif
