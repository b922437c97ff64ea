/* APPEND, pipelined: each message goes out as soon as it is handed over
 * (non-synchronising literal where LITERAL+ / LITERAL- allow it, else after
 * the server's continuation), up to pipeline_depth wait for their tagged
 * responses, and results (APPENDUID, or a refusal mapped to a scoped status)
 * reach the caller's callback in command order. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap_fetch.h"
#include "imap_internal.h"
#include "log.h"
#include "util.h"

/* RFC 7888: LITERAL- allows non-synchronising literals up to 4096 bytes. */
#define LITERAL_MINUS_MAX 4096u
/* Messages up to this size travel in one write with their command line. */
#define COALESCE_MAX (256u * 1024u)

/* ---- INTERNALDATE ---- */

/* Civil date of a day count since 1970-01-01 (Hinnant's algorithm). */
static void civil_from_days(int64_t z, int64_t *year, unsigned *month, unsigned *day)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*day = doy - (153 * mp + 2) / 5 + 1;
	*month = mp < 10 ? mp + 3 : mp - 9;
	*year = (int64_t)yoe + era * 400 + (*month <= 2);
}

bool gw_imap_format_internaldate(int64_t epoch, int32_t tz_offset_min, char out[32])
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	if (tz_offset_min <= -1440 || tz_offset_min >= 1440 || epoch < -100000000000LL ||
	    epoch > 300000000000LL)
		return false;
	int64_t local = epoch + (int64_t)tz_offset_min * 60;
	int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
	int64_t secs = local - days * 86400;
	int64_t year;
	unsigned month, day;
	civil_from_days(days, &year, &month, &day);
	if (year < 1000 || year > 9999)
		return false;
	unsigned zone = (unsigned)(tz_offset_min < 0 ? -tz_offset_min : tz_offset_min);
	char text[64];
	int n = snprintf(text, sizeof(text), "%02u-%.3s-%04d %02d:%02d:%02d %c%02u%02u", day,
	                 months + 3 * (month - 1), (int)year, (int)(secs / 3600),
	                 (int)(secs / 60 % 60), (int)(secs % 60), tz_offset_min < 0 ? '-' : '+',
	                 zone / 60, zone % 60);
	if (n != 26)
		return false;
	memcpy(out, text, 27);
	return true;
}

/* ---- flags ---- */

/* RFC 3501 atom: no atom-specials, no 8-bit. Keywords must be atoms. */
static bool is_atom(const char *s)
{
	if (!*s)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p))
			return false;
	return true;
}

static bool flag_permitted(const struct imap_append_target *t, const char *flag, bool keyword)
{
	if (!t->flags_known || (keyword && t->any_keyword))
		return true;
	for (size_t i = 0; i < t->permanent_count; i++)
		if (strcasecmp(t->permanent[i], flag) == 0)
			return true;
	return false;
}

static void add_flag(struct gw_buf *list, struct gw_buf *dropped, bool ok, const char *flag)
{
	struct gw_buf *into = ok ? list : dropped;
	if (into->len > 0)
		gw_buf_puts(into, " ");
	gw_buf_puts(into, flag);
}

/* Space-separated flags the folder keeps into @p list, the rest into @p dropped. */
static void sort_flags(const struct imap_append_target *t, const struct gw_imap_append *m,
                       struct gw_buf *list, struct gw_buf *dropped)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} system[] = {{GW_FLAG_SEEN, "\\Seen"},       {GW_FLAG_ANSWERED, "\\Answered"},
	              {GW_FLAG_FLAGGED, "\\Flagged"}, {GW_FLAG_DELETED, "\\Deleted"},
	              {GW_FLAG_DRAFT, "\\Draft"},     {GW_FLAG_FORWARDED, "$Forwarded"}};
	for (size_t i = 0; i < sizeof(system) / sizeof(system[0]); i++) {
		if (!(m->flags & system[i].bit))
			continue;
		bool keyword = system[i].name[0] != '\\';
		add_flag(list, dropped, flag_permitted(t, system[i].name, keyword), system[i].name);
	}
	for (size_t i = 0; i < m->keyword_count; i++) {
		const char *kw = m->keywords[i];
		if (!kw || (strcasecmp(kw, "$Forwarded") == 0 && (m->flags & GW_FLAG_FORWARDED)))
			continue;
		add_flag(list, dropped, is_atom(kw) && flag_permitted(t, kw, true), kw);
	}
}

/* "(\\Seen kw ...)" of what the folder keeps; the rest goes into @p dropped. */
static void build_flag_list(const struct imap_append_target *t, const struct gw_imap_append *m,
                            struct gw_buf *out, struct gw_buf *dropped)
{
	struct gw_buf list = {0};
	gw_buf_append(&list, "", 0);
	gw_buf_append(dropped, "", 0);
	sort_flags(t, m, &list, dropped);
	gw_buf_printf(out, "(%s)", list.data);
	gw_buf_free(&list);
}

/* ---- results ---- */

static gw_status refusal_status(const struct imap_response *resp, uint32_t *retry_after_ms)
{
	*retry_after_ms = 0;
	if (imap_response_throttled(resp, retry_after_ms))
		return GW_ERR_THROTTLED;
	const struct imap_value *code = imap_list_item(&resp->code, 0);
	if (imap_value_is_atom(code, "OVERQUOTA"))
		return GW_ERR_MAILBOX;
	if (imap_value_is_atom(code, "TRYCREATE") || imap_value_is_atom(code, "NONEXISTENT"))
		return GW_ERR_FOLDER;
	if (imap_value_is_atom(code, "UNAVAILABLE"))
		return GW_ERR_SESSION;
	/* [TOOBIG], [LIMIT], and any other refusal concern this message only. */
	return GW_ERR_MESSAGE;
}

static void parse_appenduid(const struct imap_response *resp, struct gw_imap_append_result *r)
{
	if (!imap_value_is_atom(imap_list_item(&resp->code, 0), "APPENDUID"))
		return;
	uint32_t validity, uid;
	if (imap_value_u32(imap_list_item(&resp->code, 1), &validity) &&
	    imap_value_u32(imap_list_item(&resp->code, 2), &uid)) {
		r->uidvalidity = validity;
		r->uid = uid;
	}
}

static void pending_free(struct imap_pending_append *p)
{
	free(p->dropped);
	p->dropped = NULL;
}

bool imap_append_complete(struct gw_imap *imap, const struct imap_response *resp)
{
	if (resp->kind != GW_IMAP_TAGGED || !resp->tag)
		return false;
	size_t i = 0;
	while (i < imap->append_count && strcmp(imap->appends[i].tag, resp->tag) != 0)
		i++;
	if (i == imap->append_count)
		return false;
	struct imap_pending_append p = imap->appends[i];
	memmove(&imap->appends[i], &imap->appends[i + 1],
	        (imap->append_count - i - 1) * sizeof(*imap->appends));
	imap->append_count--;
	struct gw_imap_append_result r = {.struct_size = sizeof(r),
	                                  .user = p.user,
	                                  .text = "",
	                                  .dropped_flags = p.dropped ? p.dropped : ""};
	if (resp->cond == GW_IMAP_OK) {
		parse_appenduid(resp, &r);
	} else {
		r.status = refusal_status(resp, &r.retry_after_ms);
		r.text = resp->text ? resp->text : "";
		snprintf(imap->last_response, sizeof(imap->last_response), "%s", r.text);
	}
	p.cb(p.arg, &r);
	pending_free(&p);
	return true;
}

static void forget_appends(struct gw_imap *imap)
{
	for (size_t i = 0; i < imap->append_count; i++)
		pending_free(&imap->appends[i]);
	free(imap->appends);
	imap->appends = NULL;
	imap->append_count = 0;
}

void imap_append_reset(struct gw_imap *imap)
{
	forget_appends(imap);
	imap_append_targets_free(imap);
}

/* Read one response and deliver it if it ends an APPEND. */
static gw_status read_one(struct gw_imap *imap)
{
	struct imap_response resp;
	gw_status st = imap_read(imap, &resp);
	if (st == GW_OK && resp.kind == GW_IMAP_TAGGED && !imap_append_complete(imap, &resp))
		gw_log(imap->ctx, GW_LOG_DEBUG, "ignoring tagged reply %s", resp.tag);
	else if (st == GW_OK && resp.kind == GW_IMAP_CONTINUATION)
		gw_log(imap->ctx, GW_LOG_DEBUG, "ignoring an unexpected continuation from %s",
		       imap->io.host);
	imap_response_free(&resp);
	if (st != GW_OK)
		forget_appends(imap);
	return st;
}

gw_status imap_append_wait(struct gw_imap *imap)
{
	while (imap->append_count > 0) {
		gw_status st = imap_check_usable(imap);
		if (st == GW_OK)
			st = read_one(imap);
		if (st != GW_OK) {
			forget_appends(imap);
			return st;
		}
	}
	return GW_OK;
}

/* ---- sending ---- */

static gw_status check_message(struct gw_imap *imap, const struct gw_imap_append *m,
                               gw_imap_append_cb cb)
{
	if (!m || m->struct_size < offsetof(struct gw_imap_append, user) + sizeof(m->user) ||
	    !m->folder || (!m->data && m->size > 0) || (m->keyword_count > 0 && !m->keywords) ||
	    !cb)
		return gw_fail(imap->ctx, GW_ERR_CONFIG, "invalid APPEND request");
	return GW_OK;
}

static const struct imap_append_target *find_target(struct gw_imap *imap, const char *folder)
{
	for (size_t i = 0; i < imap->target_count; i++)
		if (strcmp(imap->targets[i].utf8, folder) == 0)
			return &imap->targets[i];
	return NULL;
}

/* Wait for the server's "+" before a synchronising literal, delivering the
 * results of earlier APPENDs meanwhile. A tagged reply to @p tag instead is
 * a refusal of this message: its status is returned (and *refused set). */
static gw_status await_continuation(struct gw_imap *imap, const char *tag, const char *folder,
                                    bool *refused)
{
	*refused = false;
	for (;;) {
		struct imap_response resp;
		gw_status st = imap_read(imap, &resp);
		if (st != GW_OK) {
			imap_response_free(&resp);
			forget_appends(imap);
			return st;
		}
		bool done = resp.kind == GW_IMAP_CONTINUATION;
		if (resp.kind == GW_IMAP_TAGGED && strcmp(resp.tag, tag) == 0) {
			uint32_t retry = 0;
			*refused = done = true;
			gw_status status = refusal_status(&resp, &retry);
			char *what = gw_xasprintf("APPEND to \"%s\" refused", folder);
			st = imap_fail_response(imap, &resp, status, what);
			free(what);
		} else if (resp.kind == GW_IMAP_TAGGED) {
			imap_append_complete(imap, &resp);
		}
		imap_response_free(&resp);
		if (done)
			return st;
	}
}

/* "<tag> APPEND "<folder>" (<flags>) "<date>" {<n>[+]}\r\n" */
static gw_status build_command(struct gw_imap *imap, const struct imap_append_target *t,
                               const struct gw_imap_append *m, const char *tag, bool sync,
                               struct gw_buf *cmd, struct gw_buf *dropped)
{
	const char *why = NULL;
	char *wire = imap_wire_name(imap, m->folder, &why);
	if (!wire)
		return gw_fail(imap->ctx, GW_ERR_FOLDER, "cannot append to folder \"%s\": %s",
		               m->folder, why);
	gw_buf_printf(cmd, "%s APPEND ", tag);
	imap_append_quoted(cmd, wire);
	free(wire);
	gw_buf_puts(cmd, " ");
	build_flag_list(t, m, cmd, dropped);
	char date[32];
	if (m->has_internal_date &&
	    gw_imap_format_internaldate(m->internal_date, m->tz_offset_min, date))
		gw_buf_printf(cmd, " \"%s\"", date);
	else if (m->has_internal_date)
		gw_log(imap->ctx, GW_LOG_WARN,
		       "internal date %" PRId64 " cannot be written in IMAP; the server sets one",
		       m->internal_date);
	gw_buf_printf(cmd, " {%zu%s}\r\n", m->size, sync ? "" : "+");
	return GW_OK;
}

static gw_status send_literal(struct gw_imap *imap, const struct gw_imap_append *m,
                              struct gw_buf *cmd, bool sync)
{
	char trace[64];
	snprintf(trace, sizeof(trace), "{%zu bytes}", m->size);
	if (!sync && m->size <= COALESCE_MAX) {
		if (imap_trace_enabled())
			imap_trace(imap->ctx, "C", cmd->data, cmd->len - 2);
		gw_buf_append(cmd, m->data, m->size);
		gw_buf_append(cmd, "\r\n", 2);
		return imap_send_raw(imap, cmd->data, cmd->len, trace);
	}
	gw_status st = GW_OK;
	if (!sync)
		st = imap_send_raw(imap, cmd->data, cmd->len, NULL);
	if (st == GW_OK && m->size > 0)
		st = imap_send_raw(imap, (const char *)m->data, m->size, trace);
	if (st == GW_OK)
		st = imap_send_raw(imap, "\r\n", 2, "");
	return st;
}

static void push_pending(struct gw_imap *imap, const char *tag, const struct gw_imap_append *m,
                         gw_imap_append_cb cb, void *arg, struct gw_buf *dropped)
{
	imap->appends =
	        gw_xrealloc(imap->appends, (imap->append_count + 1) * sizeof(*imap->appends));
	struct imap_pending_append *p = &imap->appends[imap->append_count++];
	memset(p, 0, sizeof(*p));
	snprintf(p->tag, sizeof(p->tag), "%s", tag);
	p->cb = cb;
	p->arg = arg;
	p->user = m->user;
	p->dropped = dropped->len ? gw_xstrdup(dropped->data) : NULL;
}

static bool literal_is_sync(const struct gw_imap *imap, size_t size)
{
	if (imap_has_cap(imap, "LITERAL+"))
		return false;
	return !(imap_has_cap(imap, "LITERAL-") && size <= LITERAL_MINUS_MAX);
}

gw_status imap_append(struct gw_imap *imap, const struct gw_imap_append *message,
                      gw_imap_append_cb cb, void *arg)
{
	gw_status st = imap_check_usable(imap);
	if (st == GW_OK)
		st = check_message(imap, message, cb);
	if (st != GW_OK)
		return st;
	if (!find_target(imap, message->folder)) {
		st = imap_mailbox_info(imap, message->folder, NULL);
		if (st != GW_OK)
			return st;
	}
	const struct imap_append_target *t = find_target(imap, message->folder);
	if (t->append_limit > 0 && message->size > t->append_limit)
		return gw_fail(imap->ctx, GW_ERR_MESSAGE,
		               "message of %zu bytes is larger than the destination accepts in "
		               "\"%s\" (APPENDLIMIT %" PRIu64 " bytes); not sent",
		               message->size, message->folder, t->append_limit);
	while (st == GW_OK && imap->append_count >= imap->pipeline_depth)
		st = read_one(imap);
	if (st != GW_OK)
		return st;

	char tag[GW_IMAP_TAG_MAX];
	imap_next_tag(imap, tag);
	bool sync = literal_is_sync(imap, message->size);
	struct gw_buf cmd = {0}, dropped = {0};
	st = build_command(imap, t, message, tag, sync, &cmd, &dropped);
	if (st == GW_OK && sync) {
		bool refused = false; /* then st holds the refusal's status */
		st = imap_send_raw(imap, cmd.data, cmd.len, NULL);
		if (st == GW_OK)
			st = await_continuation(imap, tag, message->folder, &refused);
	}
	if (st == GW_OK)
		st = send_literal(imap, message, &cmd, sync);
	if (st == GW_OK)
		push_pending(imap, tag, message, cb, arg, &dropped);
	gw_buf_free(&cmd);
	gw_buf_free(&dropped);
	return st;
}
