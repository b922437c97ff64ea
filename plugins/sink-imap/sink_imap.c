/* The `imap` sink: migrate into any IMAP server. This file holds the
 * options, the per-pipeline state and the per-mailbox session (connect,
 * log in, read the namespace and the folder list). */
#include "sink_imap.h"

#include <stdlib.h>
#include <string.h>

#define OPT(field) offsetof(struct imap_sink_config, field)

static const struct gw_option options[] = {
        GW_IMAP_ENDPOINT_OPTIONS(
                struct imap_sink_config, endpoint, "Destination IMAP server host name or address",
                "the CSV column TargetUserName, else UserName, else EmailAddress",
                "the CSV column TargetPassword, else Password",
                "APPENDs kept in flight on one connection (1-1024; 1: wait for each)"),
        {.name = "create_folders",
         .type = GW_OPT_BOOL,
         .default_value = "true",
         .offset = OPT(create_folders),
         .description = "Create missing folders; false: a missing folder fails"},
        {.name = "subscribe",
         .type = GW_OPT_BOOL,
         .default_value = "true",
         .offset = OPT(subscribe),
         .description = "Subscribe the folders this sink creates"},
        {.name = "merge_case_variants",
         .type = GW_OPT_BOOL,
         .default_value = "true",
         .offset = OPT(merge_case_variants),
         .description = "Folders whose names differ only in case land in one folder (needed "
                        "for Exchange)"},
        GW_OPTION_END,
};

/* Messages are sent from memory the core holds; the client never reads a
 * message literal back, so its literal cap only bounds server responses. */
#define LITERAL_CAP (64ull * 1024 * 1024)

static gw_status sink_init(const struct gw_host *host, struct gw_ctx *ctx, const void *config,
                           void **state)
{
	const struct imap_sink_config *cfg = config;
	if (!GW_HOST_HAS(host, imap) || !GW_IMAP_HAS(host->imap, fetch_meta))
		return host->fail(ctx, GW_ERR_CONFIG,
		                  "this godwit's IMAP client cannot append (too old)");
	gw_status st = gw_imap_endpoint_check(host, ctx, &cfg->endpoint);
	if (st != GW_OK)
		return st;
	struct imap_sink *sink = calloc(1, sizeof(*sink));
	if (!sink)
		return host->fail(ctx, GW_ERR_CONFIG, "out of memory");
	sink->host = host;
	sink->cfg = cfg;
	pthread_mutex_init(&sink->late.lock, NULL);
	sink->params = gw_imap_endpoint_params(&cfg->endpoint, LITERAL_CAP);
	*state = sink;
	return GW_OK;
}

static void sink_fini(void *state)
{
	struct imap_sink *sink = state;
	if (!sink)
		return;
	pthread_mutex_destroy(&sink->late.lock);
	free(sink->late.keys);
	free(sink);
}

static gw_status read_namespace(struct imap_session *s)
{
	struct gw_imap_namespace ns = {.struct_size = sizeof(ns)};
	gw_status st = s->api->get_namespace(s->imap, &ns);
	if (st != GW_OK)
		return st;
	s->prefix = strdup(ns.prefix ? ns.prefix : "");
	s->delimiter = ns.delimiter;
	if (!s->prefix)
		return s->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
	s->host->log(s->ctx, GW_LOG_DEBUG, "destination namespace: prefix \"%s\", delimiter '%c'",
	             s->prefix, s->delimiter ? s->delimiter : '0');
	return GW_OK;
}

static void session_free(struct imap_session *s)
{
	if (!s)
		return;
	/* Results still due may arrive during LOGOUT: they must not write into the
	 * core's buffers any more, but their records stay valid until after close. */
	for (size_t i = 0; i < s->record_count; i++) {
		s->records[i]->id_out = NULL;
		s->records[i]->outcome = NULL;
	}
	if (s->imap)
		s->api->close(s->imap);
	imap_sink_records_free(s);
	imap_sink_folders_free(s);
	free(s->prefix);
	free(s);
}

static gw_status sink_open(void *state, struct gw_ctx *ctx, const struct gw_mailbox *mailbox,
                           void **session)
{
	struct imap_sink *sink = state;
	*session = NULL;
	struct imap_session *s = calloc(1, sizeof(*s));
	if (!s)
		return sink->host->fail(ctx, GW_ERR_SESSION, "out of memory");
	s->sink = sink;
	s->host = sink->host;
	s->api = sink->host->imap;
	s->ctx = ctx;
	s->email = mailbox->email;
	gw_status st = gw_imap_endpoint_open(s->host, ctx, &sink->cfg->endpoint, &sink->params,
	                                     mailbox, "TargetUserName", "TargetPassword", &s->imap);
	if (st == GW_OK)
		st = read_namespace(s);
	if (st == GW_OK)
		st = imap_sink_read_folders(s);
	if (st != GW_OK) {
		session_free(s);
		return st;
	}
	*session = s;
	return GW_OK;
}

static void sink_close(void *session)
{
	session_free(session);
}

static const struct gw_sink_ops ops = {
        .struct_size = sizeof(struct gw_sink_ops),
        .init = sink_init,
        .fini = sink_fini,
        .open = sink_open,
        .ensure_folder = imap_sink_ensure_folder,
        .prepare_folders = imap_sink_prepare_folders,
        .append = imap_sink_append,
        .lookup = imap_sink_lookup,
        .flush = imap_sink_flush,
        .close = sink_close,
        .size_limit = imap_sink_size_limit,
};

static const struct gw_plugin plugin = {
        GW_PLUGIN_HEADER,
        .kind = GW_PLUGIN_SINK,
        .name = "imap",
        .version = "0.1.0",
        .description = "Any IMAP server: pipelined APPEND with flags and dates, folders "
                       "created under the destination's namespace, APPENDUID as sink id",
        .license = "MIT",
        .capabilities =
                GW_CAP_KEYWORDS | GW_CAP_INTERNALDATE | GW_CAP_LOOKUP | GW_CAP_PARALLEL_SESSIONS,
        .options = options,
        .config_size = sizeof(struct imap_sink_config),
        .sink = &ops,
};

GW_PLUGIN_DEFINE(sink, imap, plugin)
