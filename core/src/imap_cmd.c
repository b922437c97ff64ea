/* Command/response plumbing shared by every IMAP command. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap_internal.h"
#include "log.h"

void imap_next_tag(struct gw_imap *imap, char tag[GW_IMAP_TAG_MAX])
{
	snprintf(tag, GW_IMAP_TAG_MAX, "A%u", ++imap->next_tag);
}

gw_status imap_check_usable(struct gw_imap *imap)
{
	if (imap->broken)
		return gw_fail(imap->ctx, GW_ERR_SESSION,
		               "the connection to %s was lost earlier; reconnect", imap->io.host);
	return GW_OK;
}

static gw_status mark_broken(struct gw_imap *imap, gw_status st)
{
	if (st != GW_OK)
		imap->broken = true;
	return st;
}

/* Trace @p data line by line (a batch of pipelined commands is several). */
static void trace_lines(struct gw_imap *imap, const char *data, size_t len)
{
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t line = nl ? (size_t)(nl - data) : len;
		size_t shown = line > 0 && data[line - 1] == '\r' ? line - 1 : line;
		imap_trace(imap->ctx, "C", data, shown);
		size_t step = nl ? line + 1 : line;
		data += step, len -= step;
	}
}

gw_status imap_send_raw(struct gw_imap *imap, const char *data, size_t len, const char *trace)
{
	gw_status st = imap_check_usable(imap);
	if (st != GW_OK)
		return st;
	/* A trace of "" shows nothing: the rest of a literal, a CRLF. */
	if (imap_trace_enabled() && !trace)
		trace_lines(imap, data, len);
	else if (imap_trace_enabled() && trace[0])
		imap_trace(imap->ctx, "C", trace, strlen(trace));
	return mark_broken(imap, imap_io_write(&imap->io, data, len));
}

gw_status imap_send(struct gw_imap *imap, const char *tag, const char *command, const char *trace)
{
	gw_status closed = imap_append_close_group(imap); /* no command inside a MULTIAPPEND */
	if (closed != GW_OK)
		return closed;
	struct gw_buf line = {0};
	gw_buf_printf(&line, "%s %s\r\n", tag, command);
	char *shown = trace ? gw_xasprintf("%s %s", tag, trace) : NULL;
	gw_status st = imap_send_raw(imap, line.data, line.len, shown);
	free(shown);
	gw_buf_free(&line);
	return st;
}

/* ---- capabilities ---- */

void imap_clear_caps(struct gw_imap *imap)
{
	for (size_t i = 0; i < imap->cap_count; i++)
		free(imap->caps[i]);
	free(imap->caps);
	imap->caps = NULL;
	imap->cap_count = 0;
}

void imap_set_caps(struct gw_imap *imap, const struct imap_value *list, size_t first)
{
	imap_clear_caps(imap);
	if (list->count <= first)
		return;
	imap->caps = gw_xcalloc(list->count - first, sizeof(*imap->caps));
	for (size_t i = first; i < list->count; i++) {
		const struct imap_value *v = &list->items[i];
		if (v->type != GW_IV_ATOM)
			continue;
		char *cap = gw_xstrdup(v->str);
		for (char *c = cap; *c; c++)
			*c = (char)toupper((unsigned char)*c);
		imap->caps[imap->cap_count++] = cap;
	}
}

bool imap_has_cap(const struct gw_imap *imap, const char *name)
{
	for (size_t i = 0; i < imap->cap_count; i++)
		if (strcasecmp(imap->caps[i], name) == 0)
			return true;
	return false;
}

/* ---- responses ---- */

bool imap_response_throttled(const struct imap_response *resp, uint32_t *retry_after_ms)
{
	static const char marker[] = "suggested backoff time:";
	*retry_after_ms = 0;
	bool throttled = imap_value_is_atom(imap_list_item(&resp->code, 0), "THROTTLED");
	const char *text = resp->text ? resp->text : "";
	for (const char *p = text; *p; p++) {
		if (strncasecmp(p, marker, sizeof(marker) - 1) != 0)
			continue;
		char *end;
		unsigned long long ms = strtoull(p + sizeof(marker) - 1, &end, 10);
		if (end != p + sizeof(marker) - 1) {
			*retry_after_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
			throttled = true;
		}
		break;
	}
	return throttled;
}

gw_status imap_fail_response(struct gw_imap *imap, const struct imap_response *resp,
                             gw_status status, const char *what)
{
	snprintf(imap->last_response, sizeof(imap->last_response), "%s", resp->text);
	uint32_t retry_after = 0;
	if (imap_response_throttled(resp, &retry_after)) {
		if (imap->ctx && retry_after > 0)
			imap->ctx->retry_after_ms = retry_after;
		status = GW_ERR_THROTTLED;
	}
	return gw_fail(imap->ctx, status, "%s: %s", what, resp->text);
}

static void note_data(struct gw_imap *imap, const struct imap_response *resp)
{
	const struct imap_value *first = imap_list_item(&resp->data, 0);
	const struct imap_value *second = imap_list_item(&resp->data, 1);
	uint32_t n;
	if (imap_value_is_atom(first, "CAPABILITY")) {
		imap_set_caps(imap, &resp->data, 1);
	} else if (imap_value_u32(first, &n) && imap_value_is_atom(second, "EXISTS")) {
		imap->exists = n;
	} else if (imap_value_u32(first, &n) && imap_value_is_atom(second, "EXPUNGE")) {
		if (imap->exists > 0)
			imap->exists--;
	}
}

gw_status imap_read(struct gw_imap *imap, struct imap_response *resp)
{
	gw_status st = imap_check_usable(imap);
	if (st != GW_OK) {
		memset(resp, 0, sizeof(*resp));
		return st;
	}
	st = imap_read_response(&imap->parser, resp);
	if (st != GW_OK)
		return mark_broken(imap, st);
	if (resp->kind != GW_IMAP_UNTAGGED)
		return GW_OK;
	if (imap_value_is_atom(imap_list_item(&resp->code, 0), "CAPABILITY"))
		imap_set_caps(imap, &resp->code, 1);
	if (resp->cond == GW_IMAP_COND_NONE)
		note_data(imap, resp);
	if (resp->cond == GW_IMAP_BYE && !imap->logging_out) {
		imap->broken = true;
		char *what = gw_xasprintf("IMAP server %s closed the connection", imap->io.host);
		st = imap_fail_response(imap, resp, GW_ERR_SESSION, what);
		free(what);
		return st;
	}
	return GW_OK;
}

gw_status imap_wait(struct gw_imap *imap, const char *tag, imap_untagged_fn fn, void *arg,
                    struct imap_response *tagged)
{
	gw_status result = GW_OK;
	for (;;) {
		struct imap_response resp;
		gw_status st = imap_read(imap, &resp);
		if (st != GW_OK) {
			imap_response_free(&resp);
			memset(tagged, 0, sizeof(*tagged));
			return st;
		}
		if (resp.kind == GW_IMAP_TAGGED && strcmp(resp.tag, tag) == 0) {
			*tagged = resp;
			return result;
		}
		if (resp.kind == GW_IMAP_UNTAGGED && fn && result == GW_OK)
			result = fn(arg, imap, &resp);
		else if (resp.kind == GW_IMAP_TAGGED && imap_append_complete(imap, &resp))
			; /* an APPEND sent earlier on this connection */
		else if (resp.kind != GW_IMAP_UNTAGGED)
			gw_log(imap->ctx, GW_LOG_DEBUG,
			       "ignoring an unexpected %s from %s while "
			       "waiting for %s",
			       resp.kind == GW_IMAP_TAGGED ? "tagged response" : "continuation",
			       imap->io.host, tag);
		imap_response_free(&resp);
	}
}

gw_status imap_command(struct gw_imap *imap, const char *command, imap_untagged_fn fn, void *arg,
                       struct imap_response *tagged)
{
	char tag[GW_IMAP_TAG_MAX];
	imap_next_tag(imap, tag);
	gw_status st = imap_send(imap, tag, command, NULL);
	if (st != GW_OK) {
		memset(tagged, 0, sizeof(*tagged));
		return st;
	}
	return imap_wait(imap, tag, fn, arg, tagged);
}

/* Take the command a tagged reply answers out of a pipeline's queue (@p count
 * elements of @p size bytes, oldest first, each starting with its tag) into
 * @p out. False if it answers none of them: then it may be an APPEND's. */
bool imap_take_answered(struct gw_imap *imap, void *queue, size_t *count, size_t size,
                        const struct imap_response *resp, void *out)
{
	unsigned char *q = queue;
	size_t i = 0;
	while (i < *count && strcmp((const char *)(q + i * size), resp->tag) != 0)
		i++;
	if (i == *count) {
		if (!imap_append_complete(imap, resp))
			gw_log(imap->ctx, GW_LOG_DEBUG, "ignoring tagged reply %s", resp->tag);
		return false;
	}
	memcpy(out, q + i * size, size);
	memmove(q + i * size, q + (i + 1) * size, (*count - i - 1) * size);
	--*count;
	return true;
}

/* Send (and free) the commands a pipeline queued in @p out, after ending an
 * open MULTIAPPEND: no other command may go out inside one. */
gw_status imap_send_queued(struct gw_imap *imap, struct gw_buf *out)
{
	gw_status st = out->len ? imap_append_close_group(imap) : GW_OK;
	if (st == GW_OK && out->len)
		st = imap_send_raw(imap, out->data, out->len, NULL);
	gw_buf_free(out);
	return st;
}

void imap_append_quoted(struct gw_buf *out, const char *s)
{
	gw_buf_append(out, "\"", 1);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			gw_buf_append(out, "\\", 1);
		gw_buf_append(out, s, 1);
	}
	gw_buf_append(out, "\"", 1);
}
