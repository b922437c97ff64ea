/* LOGIN and AUTHENTICATE (PLAIN with an optional authorization identity,
 * XOAUTH2). Credentials appear only on the wire: traces show "***". */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "imap_internal.h"
#include "log.h"
#include "util.h"

/* A string that can travel as a quoted string: 7-bit, no CR/LF/NUL. */
static bool quotable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p >= 0x80 || *p == '\r' || *p == '\n')
			return false;
	return strlen(s) < 1024;
}

/* Zero and free a buffer that held a secret. */
static void buf_wipe(struct gw_buf *b)
{
	if (b->data)
		OPENSSL_cleanse(b->data, b->cap);
	gw_buf_free(b);
}

/* Wait for a "+" continuation before sending a synchronizing literal.
 * A tagged reply instead means the server refused the command. */
static gw_status wait_continuation(struct gw_imap *imap, const char *tag,
                                   struct imap_response *tagged, bool *continued)
{
	*continued = false;
	for (;;) {
		struct imap_response resp;
		gw_status st = imap_read(imap, &resp);
		if (st != GW_OK) {
			imap_response_free(&resp);
			return st;
		}
		if (resp.kind == GW_IMAP_CONTINUATION) {
			imap_response_free(&resp);
			*continued = true;
			return GW_OK;
		}
		if (resp.kind == GW_IMAP_TAGGED && strcmp(resp.tag, tag) == 0) {
			*tagged = resp;
			return GW_OK;
		}
		imap_response_free(&resp);
	}
}

/* Send "<tag> LOGIN <user> <password>", each as a quoted string or, when it
 * cannot be quoted, as a literal (non-synchronizing with LITERAL+). */
static gw_status send_login(struct gw_imap *imap, const char *tag, const char *user,
                            const char *password, struct imap_response *tagged, bool *done)
{
	const char *args[2] = {user, password};
	bool literal_plus = imap_has_cap(imap, "LITERAL+");
	struct gw_buf out = {0};
	char *trace = gw_xasprintf("%s LOGIN *** ***", tag);
	gw_status st = GW_OK;
	*done = false;

	gw_buf_printf(&out, "%s LOGIN", tag);
	for (size_t i = 0; i < 2 && st == GW_OK; i++) {
		gw_buf_puts(&out, " ");
		if (quotable(args[i])) {
			imap_append_quoted(&out, args[i]);
			continue;
		}
		gw_buf_printf(&out, "{%zu%s}\r\n", strlen(args[i]), literal_plus ? "+" : "");
		if (!literal_plus) {
			st = imap_send_raw(imap, out.data, out.len, trace);
			buf_wipe(&out);
			bool continued = false;
			if (st == GW_OK)
				st = wait_continuation(imap, tag, tagged, &continued);
			if (st != GW_OK || !continued) {
				*done = st == GW_OK;
				break;
			}
		}
		gw_buf_puts(&out, args[i]);
	}
	if (st == GW_OK && !*done) {
		gw_buf_puts(&out, "\r\n");
		st = imap_send_raw(imap, out.data, out.len, trace);
	}
	buf_wipe(&out);
	free(trace);
	return st;
}

static char *base64_of(const void *data, size_t len)
{
	char *out = gw_xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* The SASL initial response of @p mechanism, base64 encoded. */
static char *sasl_initial_response(const struct gw_imap_credentials *c)
{
	struct gw_buf raw = {0};
	if (c->mechanism == GW_IMAP_AUTH_XOAUTH2) {
		gw_buf_printf(&raw, "user=%s\001auth=Bearer %s\001\001", c->user, c->secret);
	} else {
		const char *authzid = c->authzid ? c->authzid : "";
		gw_buf_append(&raw, authzid, strlen(authzid));
		gw_buf_append(&raw, "", 1);
		gw_buf_append(&raw, c->user, strlen(c->user));
		gw_buf_append(&raw, "", 1);
		gw_buf_append(&raw, c->secret, strlen(c->secret));
	}
	char *encoded = base64_of(raw.data, raw.len);
	buf_wipe(&raw);
	return encoded;
}

/* A challenge after our response is an error report (XOAUTH2 sends JSON):
 * log it and answer with an empty line so the server sends its tagged NO. */
static gw_status answer_challenge(struct gw_imap *imap, const struct imap_response *resp)
{
	size_t len = strlen(resp->text);
	if (len > 0 && len < 4096) {
		unsigned char *decoded = gw_xmalloc(len + 1);
		int n = EVP_DecodeBlock(decoded, (const unsigned char *)resp->text, (int)len);
		if (n > 0) {
			for (int i = 0; i < n; i++)
				if (decoded[i] < 0x20 || decoded[i] >= 0x7f)
					decoded[i] = ' ';
			gw_log(imap->ctx, GW_LOG_DEBUG, "authentication challenge from %s: %.*s",
			       imap->io.host, n, (const char *)decoded);
		}
		free(decoded);
	}
	return imap_send_raw(imap, "\r\n", 2, NULL);
}

static gw_status authenticate(struct gw_imap *imap, const char *tag,
                              const struct gw_imap_credentials *c, struct imap_response *tagged)
{
	const char *mech = c->mechanism == GW_IMAP_AUTH_XOAUTH2 ? "XOAUTH2" : "PLAIN";
	char *response = sasl_initial_response(c);
	size_t response_len = strlen(response);
	char *trace = gw_xasprintf("%s AUTHENTICATE %s ***", tag, mech);
	struct gw_buf out = {0};
	gw_status st;
	bool sent = false;

	if (imap_has_cap(imap, "SASL-IR")) {
		gw_buf_printf(&out, "%s AUTHENTICATE %s %s\r\n", tag, mech, response);
		st = imap_send_raw(imap, out.data, out.len, trace);
		sent = true;
	} else {
		gw_buf_printf(&out, "%s AUTHENTICATE %s\r\n", tag, mech);
		st = imap_send_raw(imap, out.data, out.len, NULL);
	}
	buf_wipe(&out);
	free(trace);
	while (st == GW_OK) {
		struct imap_response resp;
		st = imap_read(imap, &resp);
		if (st == GW_OK && resp.kind == GW_IMAP_TAGGED && strcmp(resp.tag, tag) == 0) {
			*tagged = resp;
			break;
		}
		if (st == GW_OK && resp.kind == GW_IMAP_CONTINUATION) {
			if (sent) {
				st = answer_challenge(imap, &resp);
			} else {
				gw_buf_printf(&out, "%s\r\n", response);
				st = imap_send_raw(imap, out.data, out.len, "***");
				buf_wipe(&out);
				sent = true;
			}
		}
		imap_response_free(&resp);
	}
	OPENSSL_cleanse(response, response_len);
	free(response);
	return st;
}

static gw_status check_credentials(struct gw_imap *imap, const struct gw_imap_credentials *c)
{
	if (!c ||
	    c->struct_size < offsetof(struct gw_imap_credentials, authzid) + sizeof(c->authzid))
		return gw_fail(imap->ctx, GW_ERR_CONFIG, "IMAP credentials from an unknown ABI");
	if (!c->user || !*c->user)
		return gw_fail(imap->ctx, GW_ERR_CONFIG, "no IMAP user name given");
	if (!c->secret || !*c->secret)
		return gw_fail(imap->ctx, GW_ERR_CONFIG, "no %s given for IMAP user %s",
		               c->mechanism == GW_IMAP_AUTH_XOAUTH2 ? "OAuth2 token" : "password",
		               c->user);
	if (c->mechanism != GW_IMAP_AUTH_LOGIN && c->mechanism != GW_IMAP_AUTH_PLAIN &&
	    c->mechanism != GW_IMAP_AUTH_XOAUTH2)
		return gw_fail(imap->ctx, GW_ERR_CONFIG, "unknown IMAP auth mechanism %d",
		               (int)c->mechanism);
	if (c->mechanism == GW_IMAP_AUTH_LOGIN && imap_has_cap(imap, "LOGINDISABLED"))
		return gw_fail(imap->ctx, GW_ERR_CONFIG,
		               "%s disables LOGIN on this connection (LOGINDISABLED); use tls: "
		               "implicit or starttls, or auth: plain",
		               imap->io.host);
	if (!imap_io_is_tls(&imap->io) && imap->tls != GW_IMAP_TLS_NONE)
		return gw_fail(imap->ctx, GW_ERR_CONFIG,
		               "refusing to send credentials to %s over an unencrypted connection",
		               imap->io.host);
	return GW_OK;
}

/* After a successful login the capabilities usually change. */
static gw_status refresh_capabilities(struct gw_imap *imap, const struct imap_response *tagged)
{
	if (imap_value_is_atom(imap_list_item(&tagged->code, 0), "CAPABILITY")) {
		imap_set_caps(imap, &tagged->code, 1);
		return GW_OK;
	}
	struct imap_response reply;
	gw_status st = imap_command(imap, "CAPABILITY", NULL, NULL, &reply);
	if (st == GW_OK && reply.cond != GW_IMAP_OK)
		st = imap_fail_response(imap, &reply, GW_ERR_SESSION, "CAPABILITY failed");
	imap_response_free(&reply);
	return st;
}

static gw_status login_failed(struct gw_imap *imap, const struct imap_response *tagged,
                              const struct gw_imap_credentials *c)
{
	gw_status status = GW_ERR_AUTH;
	/* [UNAVAILABLE] is the server's own trouble: worth retrying later. */
	if (imap_value_is_atom(imap_list_item(&tagged->code, 0), "UNAVAILABLE"))
		status = GW_ERR_SESSION;
	char *what;
	if (c->authzid && *c->authzid)
		what = gw_xasprintf("login as %s (authorized by %s) refused by %s", c->authzid,
		                    c->user, imap->io.host);
	else
		what = gw_xasprintf("login as %s refused by %s", c->user, imap->io.host);
	status = imap_fail_response(imap, tagged, status, what);
	free(what);
	return status;
}

gw_status imap_login(struct gw_imap *imap, const struct gw_imap_credentials *c)
{
	gw_status st = imap_check_usable(imap);
	if (st != GW_OK)
		return st;
	if (imap->authenticated) {
		gw_log(imap->ctx, GW_LOG_DEBUG, "%s pre-authenticated the connection",
		       imap->io.host);
		return GW_OK;
	}
	st = check_credentials(imap, c);
	if (st != GW_OK)
		return st;

	char tag[GW_IMAP_TAG_MAX];
	imap_next_tag(imap, tag);
	struct imap_response tagged = {0};
	bool done = false;
	if (c->mechanism == GW_IMAP_AUTH_LOGIN) {
		st = send_login(imap, tag, c->user, c->secret, &tagged, &done);
		if (st == GW_OK && !done)
			st = imap_wait(imap, tag, NULL, NULL, &tagged);
	} else {
		st = authenticate(imap, tag, c, &tagged);
	}
	if (st == GW_OK && tagged.cond != GW_IMAP_OK)
		st = login_failed(imap, &tagged, c);
	if (st == GW_OK) {
		imap->authenticated = true;
		st = refresh_capabilities(imap, &tagged);
	}
	imap_response_free(&tagged);
	return st;
}
