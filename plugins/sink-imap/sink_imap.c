/* The `imap` sink: migrate into any IMAP server. This file holds the
 * options, the per-pipeline state and the per-mailbox session (connect,
 * log in, read the namespace and the folder list). */
#include "sink_imap.h"

#include <stdlib.h>
#include <string.h>

/* Indexes match enum gw_imap_tls and enum gw_imap_auth. */
static const char *const tls_choices[] = {"implicit", "starttls", "none", NULL};
static const char *const auth_choices[] = {"login", "plain", "xoauth2", NULL};

#define OPT(field) offsetof(struct imap_sink_config, field)

static const struct gw_option options[] = {
        {.name = "host",
         .type = GW_OPT_STRING,
         .flags = GW_OPT_REQUIRED,
         .offset = OPT(host),
         .description = "Destination IMAP server host name or address"},
        {.name = "port",
         .type = GW_OPT_INT,
         .default_value = "0",
         .offset = OPT(port),
         .description = "TCP port; 0 means 993 for tls: implicit, else 143"},
        {.name = "tls",
         .type = GW_OPT_ENUM,
         .default_value = "implicit",
         .offset = OPT(tls),
         .choices = tls_choices,
         .description = "implicit (TLS from the start), starttls, or none (unencrypted; "
                        "must be explicit)"},
        {.name = "ca_file",
         .type = GW_OPT_STRING,
         .offset = OPT(ca_file),
         .description = "PEM file with extra certificate authorities to trust"},
        {.name = "tls_verify",
         .type = GW_OPT_BOOL,
         .default_value = "true",
         .offset = OPT(tls_verify),
         .description = "Verify the server certificate and host name; false is insecure"},
        {.name = "auth",
         .type = GW_OPT_ENUM,
         .default_value = "login",
         .offset = OPT(auth),
         .choices = auth_choices,
         .description = "Authentication: login, plain (AUTHENTICATE PLAIN) or xoauth2"},
        {.name = "user",
         .type = GW_OPT_STRING,
         .offset = OPT(user),
         .description = "Login name; default: the CSV column TargetUserName, else UserName, "
                        "else EmailAddress"},
        {.name = "password",
         .type = GW_OPT_SECRET,
         .offset = OPT(password),
         .description = "Password; default: the CSV column TargetPassword, else Password"},
        {.name = "admin_user",
         .type = GW_OPT_STRING,
         .offset = OPT(admin_user),
         .description = "Admin (master) user: logs in with AUTHENTICATE PLAIN as the "
                        "mailbox user"},
        {.name = "admin_password",
         .type = GW_OPT_SECRET,
         .offset = OPT(admin_password),
         .description = "Password of admin_user"},
        {.name = "oauth_token",
         .type = GW_OPT_SECRET,
         .offset = OPT(oauth_token),
         .description = "OAuth2 access token for auth: xoauth2; default: the CSV column "
                        "TargetPassword, else Password"},
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
        {.name = "pipeline_depth",
         .type = GW_OPT_INT,
         .default_value = "16",
         .offset = OPT(pipeline_depth),
         .description = "APPENDs kept in flight on one connection (1-1024; 1: wait for each)"},
        {.name = "timeout",
         .type = GW_OPT_DURATION,
         .default_value = "60s",
         .offset = OPT(timeout_ms),
         .description = "Time limit of every network read or write"},
        GW_OPTION_END,
};

/* Messages are sent from memory the core holds; the client never reads a
 * message literal back, so its literal cap only bounds server responses. */
#define LITERAL_CAP (64ull * 1024 * 1024)

static gw_status check_config(const struct gw_host *host, struct gw_ctx *ctx,
                              const struct imap_sink_config *cfg)
{
	if (cfg->port < 0 || cfg->port > 65535)
		return host->fail(ctx, GW_ERR_CONFIG, "port %lld is out of range (0-65535)",
		                  (long long)cfg->port);
	if (cfg->pipeline_depth < 1 || cfg->pipeline_depth > 1024)
		return host->fail(ctx, GW_ERR_CONFIG,
		                  "pipeline_depth %lld is out of range (1-1024)",
		                  (long long)cfg->pipeline_depth);
	if (cfg->timeout_ms == 0 || cfg->timeout_ms > UINT32_MAX)
		return host->fail(ctx, GW_ERR_CONFIG, "timeout must be between 1ms and 49 days");
	if (cfg->admin_user && !cfg->admin_password)
		return host->fail(ctx, GW_ERR_CONFIG,
		                  "admin_user is set but admin_password is not");
	if (cfg->admin_user && cfg->auth == GW_IMAP_AUTH_XOAUTH2)
		return host->fail(ctx, GW_ERR_CONFIG,
		                  "admin_user needs auth: plain (or login), not xoauth2");
	return GW_OK;
}

static gw_status sink_init(const struct gw_host *host, struct gw_ctx *ctx, const void *config,
                           void **state)
{
	const struct imap_sink_config *cfg = config;
	if (!GW_HOST_HAS(host, imap) || !GW_IMAP_HAS(host->imap, fetch_meta))
		return host->fail(ctx, GW_ERR_CONFIG,
		                  "this godwit's IMAP client cannot append (too old)");
	gw_status st = check_config(host, ctx, cfg);
	if (st != GW_OK)
		return st;
	struct imap_sink *sink = calloc(1, sizeof(*sink));
	if (!sink)
		return host->fail(ctx, GW_ERR_CONFIG, "out of memory");
	sink->host = host;
	sink->cfg = cfg;
	pthread_mutex_init(&sink->late.lock, NULL);
	sink->params = (struct gw_imap_params){
	        .struct_size = sizeof(struct gw_imap_params),
	        .host = cfg->host,
	        .port = (uint16_t)cfg->port,
	        .tls = (enum gw_imap_tls)cfg->tls,
	        .tls_verify = cfg->tls_verify,
	        .ca_file = cfg->ca_file,
	        .timeout_ms = (uint32_t)cfg->timeout_ms,
	        .max_literal = LITERAL_CAP,
	        .pipeline_depth = (unsigned)cfg->pipeline_depth,
	};
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

static bool is_set(const char *s)
{
	return s && *s;
}

/* A CSV column's value, `${ENV}` / `${file:...}` references resolved; NULL if absent. */
static gw_status column_secret(struct imap_session *s, const struct gw_mailbox *mailbox,
                               const char *column, char **out)
{
	*out = NULL;
	const char *value = s->host->mailbox_field(mailbox, column);
	if (!is_set(value))
		return GW_OK;
	return s->host->resolve_secret(s->ctx, value, out);
}

/* The secret to log in with, by the precedence README.md documents. */
static gw_status pick_secret(struct imap_session *s, const struct gw_mailbox *mailbox,
                             const char *profile_value, char **owned, const char **secret)
{
	*secret = NULL;
	if (is_set(profile_value)) {
		*secret = profile_value;
		return GW_OK;
	}
	gw_status st = column_secret(s, mailbox, "TargetPassword", owned);
	if (st != GW_OK)
		return st;
	*secret = *owned ? *owned : mailbox->password;
	return GW_OK;
}

static const char *pick_user(const struct imap_session *s, const struct gw_mailbox *mailbox)
{
	const char *column = s->host->mailbox_field(mailbox, "TargetUserName");
	if (is_set(s->sink->cfg->user))
		return s->sink->cfg->user;
	if (is_set(column))
		return column;
	return is_set(mailbox->username) ? mailbox->username : mailbox->email;
}

static gw_status log_in(struct imap_session *s, const struct gw_mailbox *mailbox)
{
	const struct imap_sink_config *cfg = s->sink->cfg;
	const char *user = pick_user(s, mailbox);
	struct gw_imap_credentials c = {
	        .struct_size = sizeof(c), .mechanism = (enum gw_imap_auth)cfg->auth, .user = user};
	char *owned = NULL;
	gw_status st = GW_OK;
	if (is_set(cfg->admin_user)) {
		c.mechanism = GW_IMAP_AUTH_PLAIN;
		c.user = cfg->admin_user;
		c.authzid = user;
		c.secret = cfg->admin_password;
	} else {
		const char *profile =
		        cfg->auth == GW_IMAP_AUTH_XOAUTH2 ? cfg->oauth_token : cfg->password;
		st = pick_secret(s, mailbox, profile, &owned, &c.secret);
	}
	if (st == GW_OK && !is_set(c.secret))
		st = s->host->fail(s->ctx, GW_ERR_CONFIG,
		                   "no %s for the destination mailbox of %s: set it in the profile "
		                   "or in the CSV column TargetPassword (or Password)",
		                   cfg->auth == GW_IMAP_AUTH_XOAUTH2 ? "OAuth2 token" : "password",
		                   mailbox->email);
	if (st == GW_OK)
		st = s->api->login(s->imap, &c);
	if (owned)
		s->host->free(owned);
	return st;
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
	gw_status st = s->api->connect(ctx, &sink->params, &s->imap);
	if (st == GW_OK)
		st = log_in(s, mailbox);
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
        .capabilities = GW_CAP_KEYWORDS | GW_CAP_INTERNALDATE | GW_CAP_LOOKUP,
        .options = options,
        .config_size = sizeof(struct imap_sink_config),
        .sink = &ops,
};

GW_PLUGIN_DEFINE(sink, imap, plugin)
