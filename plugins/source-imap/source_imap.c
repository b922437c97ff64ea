/* The generic IMAP source: any RFC 3501 server. All protocol work is done by
 * the core's IMAP client (host->imap); this plugin only turns options and a
 * mailbox row into connection parameters and credentials, with the code it
 * shares with the imap sink (plugins/common/imap_endpoint.h). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <godwit/godwit.h>

#include "imap_endpoint.h"

struct imap_config {
	struct gw_imap_endpoint endpoint;
	int64_t fetch_uids_per_command;
};

#define OPT(field) offsetof(struct imap_config, field)

static const struct gw_option options[] = {
        GW_IMAP_ENDPOINT_OPTIONS(struct imap_config, endpoint, "IMAP server host name or address",
                                 "the CSV UserName, else EmailAddress", "the CSV Password column",
                                 "Fetch commands kept in flight on one connection (1-1024)"),
        {.name = "fetch_uids_per_command",
         .type = GW_OPT_INT,
         .default_value = "256",
         .offset = OPT(fetch_uids_per_command),
         .description = "UIDs asked for by one UID FETCH of message bodies (1-1024); 1 "
                        "sends one command per message, for servers that mishandle UID "
                        "sets"},
        GW_OPTION_END,
};

struct imap_source {
	const struct gw_host *host;
	const struct imap_config *cfg;
	struct gw_imap_params params;
};

/* A folder reported without the personal namespace prefix, and its name on the server. */
struct renamed_folder {
	char *shown;
	char *server;
};

struct imap_session {
	struct imap_source *source;
	struct gw_imap *imap;
	struct gw_ctx *ctx;
	struct renamed_folder *renamed;
	size_t renamed_count;
};

/* Bodies are streamed, never buffered, so the client's literal cap only needs
 * to stay out of the way of the core's max_size, which every fetch carries. */
#define LITERAL_CAP (4ull * 1024 * 1024 * 1024)

static gw_status check_config(const struct gw_host *host, struct gw_ctx *ctx,
                              const struct imap_config *cfg)
{
	gw_status st = gw_imap_endpoint_check(host, ctx, &cfg->endpoint);
	if (st != GW_OK)
		return st;
	if (cfg->fetch_uids_per_command < 1 || cfg->fetch_uids_per_command > 1024)
		return host->fail(ctx, GW_ERR_CONFIG,
		                  "fetch_uids_per_command %lld is out of range (1-1024)",
		                  (long long)cfg->fetch_uids_per_command);
	return GW_OK;
}

static gw_status source_init(const struct gw_host *host, struct gw_ctx *ctx, const void *config,
                             void **state)
{
	const struct imap_config *cfg = config;
	if (!GW_HOST_HAS(host, imap) || host->imap->struct_size < sizeof(struct gw_imap_api))
		return host->fail(ctx, GW_ERR_CONFIG,
		                  "this godwit offers no IMAP client to plugins");
	gw_status st = check_config(host, ctx, cfg);
	if (st != GW_OK)
		return st;
	struct imap_source *src = calloc(1, sizeof(*src));
	if (!src)
		return host->fail(ctx, GW_ERR_CONFIG, "out of memory");
	src->host = host;
	src->cfg = cfg;
	src->params = gw_imap_endpoint_params(&cfg->endpoint, LITERAL_CAP);
	src->params.fetch_uids_per_command = (unsigned)cfg->fetch_uids_per_command;
	*state = src;
	return GW_OK;
}

static void source_fini(void *state)
{
	free(state);
}

static gw_status source_open(void *state, struct gw_ctx *ctx, const struct gw_mailbox *mailbox,
                             void **session)
{
	struct imap_source *src = state;
	*session = NULL;
	struct gw_imap *conn = NULL;
	gw_status st = gw_imap_endpoint_open(src->host, ctx, &src->cfg->endpoint, &src->params,
	                                     mailbox, NULL, NULL, &conn);
	if (st != GW_OK)
		return st;
	struct imap_session *s = calloc(1, sizeof(*s));
	if (!s) {
		src->host->imap->close(conn);
		return src->host->fail(ctx, GW_ERR_SESSION, "out of memory");
	}
	s->source = src;
	s->imap = conn;
	s->ctx = ctx;
	*session = s;
	return GW_OK;
}

static void forget_renamed(struct imap_session *s)
{
	for (size_t i = 0; i < s->renamed_count; i++) {
		free(s->renamed[i].shown);
		free(s->renamed[i].server);
	}
	free(s->renamed);
	s->renamed = NULL;
	s->renamed_count = 0;
}

static bool remember_renamed(struct imap_session *s, const char *shown, const char *server)
{
	struct renamed_folder *grown =
	        realloc(s->renamed, (s->renamed_count + 1) * sizeof(*s->renamed));
	if (!grown)
		return false;
	s->renamed = grown;
	struct renamed_folder *r = &s->renamed[s->renamed_count];
	r->shown = strdup(shown);
	r->server = strdup(server);
	if (!r->shown || !r->server) {
		free(r->shown);
		free(r->server);
		return false;
	}
	s->renamed_count++;
	return true;
}

/* The name the core sees: without the personal namespace prefix ("INBOX." on
 * Courier-style servers), so "INBOX.Sent" is "Sent" and a destination without
 * a prefix does not get every folder under INBOX. INBOX itself, names outside
 * the prefix, and a name that would read as INBOX keep their full name. */
static const char *shown_name(const char *prefix, const char *name)
{
	size_t len = strlen(prefix);
	if (len == 0 || strcasecmp(name, "INBOX") == 0 || strncmp(name, prefix, len) != 0)
		return name;
	const char *rest = name + len;
	if (*rest == '\0' || strcasecmp(rest, "INBOX") == 0)
		return name;
	return rest;
}

struct listing {
	struct imap_session *s;
	const char *prefix;
	gw_folder_cb cb;
	void *arg;
};

static gw_status on_listed(void *arg, const struct gw_folder_info *info)
{
	struct listing *l = arg;
	const char *shown = info && info->name ? shown_name(l->prefix, info->name) : NULL;
	if (!shown || shown == info->name)
		return l->cb(l->arg, info);
	if (!remember_renamed(l->s, shown, info->name))
		return l->s->source->host->fail(l->s->ctx, GW_ERR_SESSION, "out of memory");
	struct gw_folder_info copy = *info;
	copy.name = shown;
	return l->cb(l->arg, &copy);
}

static gw_status source_list_folders(void *session, gw_folder_cb cb, void *arg)
{
	struct imap_session *s = session;
	const struct gw_imap_api *imap = s->source->host->imap;
	struct gw_imap_namespace ns = {.struct_size = sizeof(ns)};
	forget_renamed(s);
	if (GW_IMAP_HAS(imap, get_namespace)) {
		gw_status st = imap->get_namespace(s->imap, &ns);
		if (st != GW_OK)
			return st;
	}
	/* A copy: the connection may replace its own while listing. */
	char *prefix = strdup(ns.prefix ? ns.prefix : "");
	if (!prefix)
		return s->source->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
	struct listing l = {.s = s, .prefix = prefix, .cb = cb, .arg = arg};
	gw_status st = imap->list(s->imap, on_listed, &l);
	free(prefix);
	return st;
}

/* The server's name of a folder as list_folders reported it. */
static const char *server_name(const struct imap_session *s, const char *folder)
{
	for (size_t i = 0; i < s->renamed_count; i++)
		if (strcmp(s->renamed[i].shown, folder) == 0)
			return s->renamed[i].server;
	return folder;
}

static gw_status source_select_folder(void *session, const char *folder,
                                      struct gw_folder_status *status)
{
	struct imap_session *s = session;
	return s->source->host->imap->select(s->imap, server_name(s, folder), true, status);
}

static gw_status source_scan(void *session, const struct gw_scan_request *request, gw_meta_cb cb,
                             void *arg)
{
	struct imap_session *s = session;
	return s->source->host->imap->scan(s->imap, request, cb, arg);
}

static gw_status source_fetch(void *session, const struct gw_fetch_request *request,
                              const struct gw_fetch_target *target)
{
	struct imap_session *s = session;
	return s->source->host->imap->fetch(s->imap, request, target);
}

/* The tests build this file a second time as "imapserial", without
 * fetch_folders and scan_folders: a source as ABI 1.1 knew them, which the core
 * scans and copies folder by folder (tests/plugins/CMakeLists.txt). */
#ifndef GW_SOURCE_IMAP_NAME
#define GW_SOURCE_IMAP_NAME imap
#endif
#define GW_STRINGIFY(x)         #x
#define GW_NAME_OF(x)           GW_STRINGIFY(x)
#define GW_DEFINE_SOURCE(cname) GW_PLUGIN_DEFINE(source, cname, plugin)

#ifndef GW_SOURCE_IMAP_SERIAL
/* The requests pass on with the folders as listed renamed back to the server's
 * names. A plugin of ABI 1.2 runs only on hosts that have both operations. */
static gw_status source_fetch_folders(void *session, const struct gw_fetch_request *requests,
                                      size_t count, const struct gw_fetch_target *target)
{
	struct imap_session *s = session;
	struct gw_fetch_request *on_server = calloc(count ? count : 1, sizeof(*on_server));
	if (!on_server)
		return s->source->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
	for (size_t i = 0; i < count; i++) {
		on_server[i] = requests[i];
		on_server[i].folder =
		        requests[i].folder ? server_name(s, requests[i].folder) : NULL;
	}
	gw_status st = s->source->host->imap->fetch_folders(s->imap, on_server, count, target);
	free(on_server);
	return st;
}

static gw_status source_scan_folders(void *session, const struct gw_scan_request *requests,
                                     size_t count, const struct gw_scan_target *target)
{
	struct imap_session *s = session;
	struct gw_scan_request *on_server = calloc(count ? count : 1, sizeof(*on_server));
	if (!on_server)
		return s->source->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
	for (size_t i = 0; i < count; i++) {
		on_server[i] = requests[i];
		on_server[i].folder =
		        requests[i].folder ? server_name(s, requests[i].folder) : NULL;
	}
	gw_status st = s->source->host->imap->scan_folders(s->imap, on_server, count, target);
	free(on_server);
	return st;
}
#endif

static void source_close(void *session)
{
	struct imap_session *s = session;
	if (!s)
		return;
	s->source->host->imap->close(s->imap);
	forget_renamed(s);
	free(s);
}

static const struct gw_source_ops ops = {
        .struct_size = sizeof(struct gw_source_ops),
        .init = source_init,
        .fini = source_fini,
        .open = source_open,
        .list_folders = source_list_folders,
        .select_folder = source_select_folder,
        .scan = source_scan,
        .fetch = source_fetch,
        .close = source_close,
#ifndef GW_SOURCE_IMAP_SERIAL
        .fetch_folders = source_fetch_folders,
        .scan_folders = source_scan_folders,
#endif
};

static const struct gw_plugin plugin = {
        GW_PLUGIN_HEADER,
        .kind = GW_PLUGIN_SOURCE,
        .name = GW_NAME_OF(GW_SOURCE_IMAP_NAME),
        .version = "0.1.0",
        .description = "Any IMAP server (RFC 3501): LOGIN, PLAIN with an admin identity, "
                       "XOAUTH2",
        .license = "MIT",
        .capabilities = GW_CAP_KEYWORDS | GW_CAP_INTERNALDATE | GW_CAP_PARALLEL_SESSIONS,
        .options = options,
        .config_size = sizeof(struct imap_config),
        .source = &ops,
};

GW_DEFINE_SOURCE(GW_SOURCE_IMAP_NAME)
