/* The connection half both IMAP plugins share (imap_endpoint.h). */
#include "imap_endpoint.h"

const char *const gw_imap_endpoint_tls_choices[] = {"implicit", "starttls", "none", NULL};
const char *const gw_imap_endpoint_auth_choices[] = {"login", "plain", "xoauth2", NULL};

gw_status gw_imap_endpoint_check(const struct gw_host *host, struct gw_ctx *ctx,
                                 const struct gw_imap_endpoint *ep)
{
	if (ep->port < 0 || ep->port > 65535)
		return host->fail(ctx, GW_ERR_CONFIG, "port %lld is out of range (0-65535)",
		                  (long long)ep->port);
	if (ep->pipeline_depth < 1 || ep->pipeline_depth > 1024)
		return host->fail(ctx, GW_ERR_CONFIG,
		                  "pipeline_depth %lld is out of range (1-1024)",
		                  (long long)ep->pipeline_depth);
	if (ep->timeout_ms == 0 || ep->timeout_ms > UINT32_MAX)
		return host->fail(ctx, GW_ERR_CONFIG, "timeout must be between 1ms and 49 days");
	if (ep->admin_user && !ep->admin_password)
		return host->fail(ctx, GW_ERR_CONFIG,
		                  "admin_user is set but admin_password is not");
	if (ep->admin_user && ep->auth == GW_IMAP_AUTH_XOAUTH2)
		return host->fail(ctx, GW_ERR_CONFIG,
		                  "admin_user needs auth: plain (or login), not xoauth2");
	return GW_OK;
}

struct gw_imap_params gw_imap_endpoint_params(const struct gw_imap_endpoint *ep,
                                              uint64_t max_literal)
{
	return (struct gw_imap_params){
	        .struct_size = sizeof(struct gw_imap_params),
	        .host = ep->host,
	        .port = (uint16_t)ep->port,
	        .tls = (enum gw_imap_tls)ep->tls,
	        .tls_verify = ep->tls_verify,
	        .ca_file = ep->ca_file,
	        .timeout_ms = (uint32_t)ep->timeout_ms,
	        .max_literal = max_literal,
	        .pipeline_depth = (unsigned)ep->pipeline_depth,
	};
}

static bool is_set(const char *s)
{
	return s && *s;
}

/* What one login needs; `owned` is a resolved column secret the host allocated. */
struct login_choice {
	const struct gw_host *host;
	struct gw_ctx *ctx;
	const struct gw_imap_endpoint *ep;
	const struct gw_mailbox *mailbox;
	const char *password_column;
	struct gw_imap_credentials creds;
	char *owned;
};

static const char *pick_user(const struct login_choice *l, const char *user_column)
{
	if (is_set(l->ep->user))
		return l->ep->user;
	const char *column = user_column ? l->host->mailbox_field(l->mailbox, user_column) : NULL;
	if (is_set(column))
		return column;
	return is_set(l->mailbox->username) ? l->mailbox->username : l->mailbox->email;
}

/* The profile's secret, else the preferred column's (resolving `${...}`), else Password. */
static gw_status pick_secret(struct login_choice *l, const char *profile_value)
{
	if (is_set(profile_value)) {
		l->creds.secret = profile_value;
		return GW_OK;
	}
	const char *column =
	        l->password_column ? l->host->mailbox_field(l->mailbox, l->password_column) : NULL;
	if (is_set(column)) {
		gw_status st = l->host->resolve_secret(l->ctx, column, &l->owned);
		if (st != GW_OK)
			return st;
	}
	l->creds.secret = l->owned ? l->owned : l->mailbox->password;
	return GW_OK;
}

/* The texts each plugin has always given: the sink names its preferred column. */
static gw_status fail_no_secret(const struct login_choice *l)
{
	bool oauth = l->ep->auth == GW_IMAP_AUTH_XOAUTH2 && !is_set(l->ep->admin_user);
	if (l->password_column)
		return l->host->fail(l->ctx, GW_ERR_CONFIG,
		                     "no %s for the destination mailbox of %s: set it in the "
		                     "profile or in the CSV column %s (or Password)",
		                     oauth ? "OAuth2 token" : "password", l->mailbox->email,
		                     l->password_column);
	if (oauth)
		return l->host->fail(l->ctx, GW_ERR_CONFIG,
		                     "no OAuth2 token for mailbox %s: set oauth_token or the CSV "
		                     "Password column",
		                     l->mailbox->email);
	return l->host->fail(l->ctx, GW_ERR_CONFIG,
	                     "no password for mailbox %s: set password in the profile or the "
	                     "CSV Password column",
	                     l->mailbox->email);
}

/* Who logs in, and with what; an admin acts as the mailbox user through PLAIN. */
static gw_status choose_credentials(struct login_choice *l, const char *user_column)
{
	const struct gw_imap_endpoint *ep = l->ep;
	const char *user = pick_user(l, user_column);
	l->creds = (struct gw_imap_credentials){
	        .struct_size = sizeof(l->creds),
	        .mechanism = (enum gw_imap_auth)ep->auth,
	        .user = user,
	};
	gw_status st = GW_OK;
	if (is_set(ep->admin_user)) {
		l->creds.mechanism = GW_IMAP_AUTH_PLAIN;
		l->creds.user = ep->admin_user;
		l->creds.authzid = user;
		l->creds.secret = ep->admin_password;
	} else {
		st = pick_secret(l,
		                 ep->auth == GW_IMAP_AUTH_XOAUTH2 ? ep->oauth_token : ep->password);
	}
	if (st == GW_OK && !is_set(l->creds.secret))
		st = fail_no_secret(l);
	return st;
}

gw_status gw_imap_endpoint_open(const struct gw_host *host, struct gw_ctx *ctx,
                                const struct gw_imap_endpoint *ep,
                                const struct gw_imap_params *params,
                                const struct gw_mailbox *mailbox, const char *user_column,
                                const char *password_column, struct gw_imap **conn)
{
	const struct gw_imap_api *imap = host->imap;
	struct login_choice l = {.host = host,
	                         .ctx = ctx,
	                         .ep = ep,
	                         .mailbox = mailbox,
	                         .password_column = password_column};
	*conn = NULL;
	gw_status st = choose_credentials(&l, user_column);
	if (st == GW_OK)
		st = imap->connect(ctx, params, conn);
	if (st == GW_OK)
		st = imap->login(*conn, &l.creds);
	if (l.owned)
		host->free(l.owned);
	if (st != GW_OK && *conn) {
		imap->close(*conn);
		*conn = NULL;
	}
	return st;
}
