/* Connection set-up, SELECT, and the gw_imap_api table. */
#include "imap_client.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap_internal.h"
#include "imap_utf7.h"
#include "log.h"
#include "util.h"

#ifndef GODWIT_VERSION
#define GODWIT_VERSION "0"
#endif

#define DEFAULT_TIMEOUT_MS     60000u
#define DEFAULT_MAX_LITERAL    (64ull * 1024 * 1024)
#define DEFAULT_PIPELINE_DEPTH 16u
#define MAX_PIPELINE_DEPTH     1024u
/* A set of 256 scattered UIDs is ~3 KB of command line, far below the limits
 * servers put on one (Dovecot: 64 KB), and few enough that one refused set
 * fails few messages. */
#define DEFAULT_FETCH_UIDS 256u
#define MAX_FETCH_UIDS     1024u
#define LOGOUT_TIMEOUT_MS  5000

static void imap_free(struct gw_imap *imap)
{
	if (!imap)
		return;
	imap_io_close(&imap->io);
	imap_parser_free(&imap->parser);
	imap_clear_caps(imap);
	for (size_t i = 0; i < imap->alias_count; i++) {
		free(imap->aliases[i].utf8);
		free(imap->aliases[i].wire);
	}
	free(imap->aliases);
	for (size_t i = 0; i < imap->foreign_count; i++)
		free(imap->foreign_prefixes[i]);
	free(imap->foreign_prefixes);
	free(imap->personal_prefix);
	imap_append_reset(imap);
	for (size_t i = 0; i < imap->permanent_scratch_count; i++)
		free(imap->permanent_scratch[i]);
	free(imap->permanent_scratch);
	free(imap->ca_file);
	free(imap);
}

static gw_status fetch_capabilities(struct gw_imap *imap)
{
	struct imap_response tagged;
	gw_status st = imap_command(imap, "CAPABILITY", NULL, NULL, &tagged);
	if (st == GW_OK && tagged.cond != GW_IMAP_OK)
		st = imap_fail_response(imap, &tagged, GW_ERR_SESSION, "CAPABILITY failed");
	imap_response_free(&tagged);
	return st;
}

/* Tell the server who we are (some require it before LOGIN); its answer does not matter. */
static gw_status send_id(struct gw_imap *imap)
{
	if (!imap_has_cap(imap, "ID"))
		return GW_OK;
	struct imap_response tagged;
	gw_status st =
	        imap_command(imap, "ID (\"name\" \"godwit\" \"version\" \"" GODWIT_VERSION "\")",
	                     NULL, NULL, &tagged);
	imap_response_free(&tagged);
	return st;
}

static gw_status read_greeting(struct gw_imap *imap)
{
	struct imap_response greeting;
	gw_status st = imap_read(imap, &greeting);
	if (st == GW_OK && (greeting.kind != GW_IMAP_UNTAGGED ||
	                    (greeting.cond != GW_IMAP_OK && greeting.cond != GW_IMAP_PREAUTH)))
		st = gw_fail(imap->ctx, GW_ERR_SESSION, "%s:%u did not greet like an IMAP server",
		             imap->io.host, imap->io.port);
	if (st == GW_OK && greeting.cond == GW_IMAP_PREAUTH)
		imap->authenticated = true;
	imap_response_free(&greeting);
	return st;
}

static gw_status start_tls_command(struct gw_imap *imap)
{
	if (imap->authenticated)
		return gw_fail(imap->ctx, GW_ERR_CONFIG,
		               "%s pre-authenticated the plain connection, so STARTTLS is not "
		               "possible; use tls: implicit",
		               imap->io.host);
	if (imap->cap_count == 0) {
		gw_status st = fetch_capabilities(imap);
		if (st != GW_OK)
			return st;
	}
	if (!imap_has_cap(imap, "STARTTLS"))
		return gw_fail(imap->ctx, GW_ERR_CONFIG,
		               "%s does not offer STARTTLS; use tls: implicit (port 993)",
		               imap->io.host);
	struct imap_response tagged;
	gw_status st = imap_command(imap, "STARTTLS", NULL, NULL, &tagged);
	if (st == GW_OK && tagged.cond != GW_IMAP_OK)
		st = imap_fail_response(imap, &tagged, GW_ERR_SESSION, "STARTTLS refused");
	imap_response_free(&tagged);
	if (st != GW_OK)
		return st;
	/* Bytes after the OK arrived in plaintext: an attacker could have injected them. */
	if (imap_parser_has_buffered(&imap->parser)) {
		imap->broken = true;
		return gw_fail(imap->ctx, GW_ERR_SESSION,
		               "%s sent data after the STARTTLS reply before the TLS handshake",
		               imap->io.host);
	}
	st = imap_io_start_tls(&imap->io, imap->tls_verify, imap->ca_file);
	if (st != GW_OK) {
		imap->broken = true;
		return st;
	}
	/* Capabilities seen before TLS may have been forged: forget them. */
	imap_clear_caps(imap);
	return GW_OK;
}

static gw_status check_params(struct gw_ctx *ctx, const struct gw_imap_params *params)
{
	if (!params || params->struct_size < offsetof(struct gw_imap_params, pipeline_depth) +
	                                             sizeof(params->pipeline_depth))
		return gw_fail(ctx, GW_ERR_CONFIG,
		               "IMAP connection parameters from an unknown ABI");
	if (!params->host || !*params->host)
		return gw_fail(ctx, GW_ERR_CONFIG, "no IMAP host given");
	if (params->tls != GW_IMAP_TLS_IMPLICIT && params->tls != GW_IMAP_TLS_STARTTLS &&
	    params->tls != GW_IMAP_TLS_NONE)
		return gw_fail(ctx, GW_ERR_CONFIG, "unknown IMAP tls mode %d", (int)params->tls);
	return GW_OK;
}

static struct gw_imap *imap_new(struct gw_ctx *ctx, const struct gw_imap_params *params)
{
	struct gw_imap *imap = gw_xcalloc(1, sizeof(*imap));
	imap->ctx = ctx;
	imap->io.fd = -1;
	imap->tls = params->tls;
	imap->tls_verify = params->tls_verify;
	imap->ca_file = params->ca_file && *params->ca_file ? gw_xstrdup(params->ca_file) : NULL;
	imap->max_literal = params->max_literal ? params->max_literal : DEFAULT_MAX_LITERAL;
	imap->pipeline_depth =
	        params->pipeline_depth ? params->pipeline_depth : DEFAULT_PIPELINE_DEPTH;
	if (imap->pipeline_depth > MAX_PIPELINE_DEPTH)
		imap->pipeline_depth = MAX_PIPELINE_DEPTH;
	imap->fetch_uids = DEFAULT_FETCH_UIDS;
	if (params->struct_size >= offsetof(struct gw_imap_params, fetch_uids_per_command) +
	                                   sizeof(params->fetch_uids_per_command) &&
	    params->fetch_uids_per_command > 0)
		imap->fetch_uids = params->fetch_uids_per_command;
	if (imap->fetch_uids > MAX_FETCH_UIDS)
		imap->fetch_uids = MAX_FETCH_UIDS;
	return imap;
}

static gw_status open_transport(struct gw_imap *imap, const struct gw_imap_params *params)
{
	uint16_t port = params->port;
	if (port == 0)
		port = params->tls == GW_IMAP_TLS_IMPLICIT ? 993 : 143;
	uint32_t timeout = params->timeout_ms ? params->timeout_ms : DEFAULT_TIMEOUT_MS;
	gw_status st = imap_io_connect(&imap->io, imap->ctx, params->host, port, timeout);
	imap_parser_init(&imap->parser, &imap->io, imap->ctx);
	if (st == GW_OK && params->tls == GW_IMAP_TLS_IMPLICIT)
		st = imap_io_start_tls(&imap->io, imap->tls_verify, imap->ca_file);
	if (st == GW_OK)
		st = read_greeting(imap);
	if (st == GW_OK && params->tls == GW_IMAP_TLS_STARTTLS)
		st = start_tls_command(imap);
	return st;
}

static gw_status client_connect(struct gw_ctx *ctx, const struct gw_imap_params *params,
                                struct gw_imap **out)
{
	*out = NULL;
	gw_status st = check_params(ctx, params);
	if (st != GW_OK)
		return st;
	struct gw_imap *imap = imap_new(ctx, params);
	st = open_transport(imap, params);
	if (st == GW_OK && imap->cap_count == 0)
		st = fetch_capabilities(imap);
	if (st == GW_OK)
		st = send_id(imap);
	if (st != GW_OK) {
		imap_free(imap);
		return st;
	}
	gw_log(ctx, GW_LOG_DEBUG, "connected to %s:%u (%s)", imap->io.host, imap->io.port,
	       imap_io_is_tls(&imap->io) ? "TLS" : "plain");
	*out = imap;
	return GW_OK;
}

static bool client_has_capability(struct gw_imap *imap, const char *capability)
{
	return imap && capability && imap_has_cap(imap, capability);
}

/* ---- SELECT / EXAMINE ---- */

void imap_clear_permanent_flags(struct gw_imap *imap)
{
	for (size_t i = 0; i < imap->permanent_scratch_count; i++)
		free(imap->permanent_scratch[i]);
	free(imap->permanent_scratch);
	imap->permanent_scratch = NULL;
	imap->permanent_scratch_count = 0;
	imap->permanent_seen = false;
}

/* Kept for mailbox_info: which flags APPEND may set in this folder. */
static void note_permanent_flags(struct gw_imap *imap, const struct imap_value *list)
{
	imap_clear_permanent_flags(imap);
	if (!list || list->type != GW_IV_LIST)
		return;
	imap->permanent_seen = true;
	imap->permanent_scratch = gw_xcalloc(list->count ? list->count : 1, sizeof(char *));
	for (size_t i = 0; i < list->count; i++)
		if (list->items[i].type == GW_IV_ATOM)
			imap->permanent_scratch[imap->permanent_scratch_count++] =
			        gw_xstrdup(list->items[i].str);
}

gw_status imap_select_untagged(void *arg, struct gw_imap *imap, const struct imap_response *resp)
{
	struct gw_folder_status *status = arg;
	if (resp->cond != GW_IMAP_OK)
		return GW_OK;
	const struct imap_value *key = imap_list_item(&resp->code, 0);
	const struct imap_value *value = imap_list_item(&resp->code, 1);
	if (imap_value_is_atom(key, "PERMANENTFLAGS"))
		note_permanent_flags(imap, value);
	else if (imap_value_is_atom(key, "UIDVALIDITY"))
		imap_value_u32(value, &status->uidvalidity);
	else if (imap_value_is_atom(key, "UIDNEXT"))
		imap_value_u32(value, &status->uidnext);
	else if (imap_value_is_atom(key, "HIGHESTMODSEQ"))
		imap_value_u64(value, &status->highestmodseq);
	return GW_OK;
}

static void copy_status(struct gw_folder_status *to, const struct gw_folder_status *from)
{
	size_t size = to->struct_size < sizeof(*from) ? to->struct_size : sizeof(*from);
	if (size <= sizeof(to->struct_size))
		return;
	memcpy((char *)to + sizeof(to->struct_size), (const char *)from + sizeof(to->struct_size),
	       size - sizeof(to->struct_size));
}

bool imap_select_command(struct gw_imap *imap, const char *folder, bool read_only,
                         struct gw_buf *cmd, const char **why)
{
	char *wire = imap_wire_name(imap, folder, why);
	if (!wire)
		return false;
	gw_buf_puts(cmd, read_only ? "EXAMINE " : "SELECT ");
	imap_append_quoted(cmd, wire);
	if (imap_has_cap(imap, "CONDSTORE"))
		gw_buf_puts(cmd, " (CONDSTORE)");
	free(wire);
	return true;
}

gw_status imap_select(struct gw_imap *imap, const char *folder, bool read_only,
                      struct gw_folder_status *status)
{
	gw_status st = imap_check_usable(imap);
	if (st != GW_OK)
		return st;
	struct gw_buf cmd = {0};
	const char *why = NULL;
	if (!imap_select_command(imap, folder, read_only, &cmd, &why))
		return gw_fail(imap->ctx, GW_ERR_FOLDER, "cannot select folder \"%s\": %s", folder,
		               why);

	struct gw_folder_status found = {.struct_size = sizeof(found)};
	struct imap_response tagged;
	imap->selected = false;
	imap->exists = 0;
	imap_clear_permanent_flags(imap);
	st = imap_command(imap, cmd.data, imap_select_untagged, &found, &tagged);
	gw_buf_free(&cmd);
	if (st == GW_OK && tagged.cond != GW_IMAP_OK) {
		char *what = gw_xasprintf("cannot select folder \"%s\"", folder);
		st = imap_fail_response(imap, &tagged, GW_ERR_FOLDER, what);
		free(what);
	}
	imap_response_free(&tagged);
	if (st != GW_OK)
		return st;
	imap->selected = true;
	found.exists = imap->exists;
	if (status)
		copy_status(status, &found);
	gw_log(imap->ctx, GW_LOG_DEBUG,
	       "selected \"%s\": uidvalidity %" PRIu32 ", uidnext %" PRIu32 ", %" PRIu32
	       " messages",
	       folder, found.uidvalidity, found.uidnext, found.exists);
	return GW_OK;
}

/* ---- the rest of the table ---- */

static gw_status client_select(struct gw_imap *imap, const char *folder, bool read_only,
                               struct gw_folder_status *status)
{
	return imap_select(imap, folder, read_only, status);
}

static gw_status client_login(struct gw_imap *imap, const struct gw_imap_credentials *credentials)
{
	return imap_login(imap, credentials);
}

static gw_status client_list(struct gw_imap *imap, gw_folder_cb cb, void *arg)
{
	return imap_list(imap, cb, arg);
}

static gw_status client_scan(struct gw_imap *imap, const struct gw_scan_request *request,
                             gw_meta_cb cb, void *arg)
{
	return imap_scan(imap, request, cb, arg);
}

static gw_status client_fetch(struct gw_imap *imap, const struct gw_fetch_request *request,
                              const struct gw_fetch_target *target)
{
	return imap_fetch(imap, request, target);
}

static const char *client_last_response(struct gw_imap *imap)
{
	return imap ? imap->last_response : "";
}

static void client_close(struct gw_imap *imap)
{
	if (!imap)
		return;
	if (!imap->broken && imap->io.fd >= 0) {
		/* Best effort: a server that does not answer quickly is simply dropped. */
		if (imap->io.timeout_ms > LOGOUT_TIMEOUT_MS)
			imap->io.timeout_ms = LOGOUT_TIMEOUT_MS;
		imap->logging_out = true;
		struct gw_ctx quiet = {0};
		imap->ctx = &quiet; /* failures of LOGOUT must not overwrite the real error */
		imap->io.ctx = &quiet;
		imap->parser.ctx = &quiet;
		struct imap_response tagged;
		imap_command(imap, "LOGOUT", NULL, NULL, &tagged);
		imap_response_free(&tagged);
	}
	imap_free(imap);
}

static const struct gw_imap_api imap_api = {
        .struct_size = sizeof(struct gw_imap_api),
        .connect = client_connect,
        .login = client_login,
        .has_capability = client_has_capability,
        .list = client_list,
        .select = client_select,
        .scan = client_scan,
        .fetch = client_fetch,
        .last_response = client_last_response,
        .close = client_close,
        .get_namespace = imap_get_namespace,
        .create = imap_create,
        .subscribe = imap_subscribe,
        .mailbox_info = imap_mailbox_info,
        .append = imap_append,
        .append_wait = imap_append_wait,
        .search = imap_search,
        .fetch_meta = imap_fetch_meta,
        .fetch_folders = imap_fetch_folders,
        .scan_folders = imap_scan_folders,
        .prepare_folders = imap_prepare_folders,
};

const struct gw_imap_api *gw_imap_client_api(void)
{
	return &imap_api;
}
