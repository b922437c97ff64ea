/* APPEND, pipelined: each message goes out as soon as it is handed over
 * (non-synchronising literal where LITERAL+ / LITERAL- allow it, else after
 * the server's continuation), up to pipeline_depth commands wait for their
 * tagged responses, and results (APPENDUID, or a refusal mapped to a scoped
 * status) reach the caller's callback.
 *
 * Where the server offers MULTIAPPEND (RFC 3502), small messages for one
 * folder share one APPEND command, which the server stores in one transaction
 * instead of one each (godwit into a Dovecot on tmpfs: 2,000 messages in
 * 0.62-0.71 s instead of 0.89-0.91 s). A command is atomic, so its refusal
 * because of one message is retried one message at a time, from copies kept
 * until the answer.
 *
 * Message text must never reach the server outside a literal it will read as
 * one. How a server treats the rest of a MULTIAPPEND after refusing one of its
 * messages decides how the later messages go out:
 * - Dovecot (2.x, named so by ID) answers NO at once and reads the command on
 *   to its last line, throwing the later literals away. So every message goes
 *   with a non-synchronising literal, without waiting: one round trip for the
 *   whole command, as RFC 3502 intends with LITERAL+.
 * - Any other server may end the command at the refusal, and bytes sent after
 *   it would be read as commands. There only the first message goes with the
 *   command line; each later one announces a synchronising literal and is sent
 *   after the server's "+". Each "+" costs a round trip: where those are slow,
 *   pipelined single APPENDs are faster and grouping is switched off.
 * Either way, while a command is half written, no answer is read but the "+"
 * awaited and nothing is sent again: a server that answered early and reads on
 * would take the next command's line as more of this one, and the literal
 * after it as commands. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "imap_fetch.h"
#include "imap_internal.h"
#include "log.h"
#include "util.h"

/* RFC 7888: LITERAL- allows non-synchronising literals up to 4096 bytes. */
#define LITERAL_MINUS_MAX 4096u
/* Messages up to this size travel in one write with their command line. */
#define COALESCE_MAX (256u * 1024u)
/* A literal read from the spool's file goes out in chunks of this size. */
#define FILE_CHUNK (256u * 1024u)
/* One MULTIAPPEND: at most this many messages and bytes, each message at most
 * GROUP_MAX_MEMBER (and in memory, not in the spool's file)... Dovecot stores
 * each command in a transaction of its own, which costs it about as much as a
 * message: the bench's attachments over 256 KB (of its 1,795 of 100 KB-2 MB)
 * sent one per command took it a quarter more CPU than grouped, and the run a
 * fifth more time (bench/PROFILE.md, fifteenth pass). */
#define GROUP_MAX_MESSAGES 64u
#define GROUP_MAX_MEMBER   (2u * 1024u * 1024u)
#define GROUP_MAX_BYTES    (4u * 1024u * 1024u)
/* ...a new command opens only while the copies kept for a retry one by one
 * stay below this (a message joining the open command never waits, so that
 * waiting for answers cannot cut groups short: at most this plus
 * GROUP_MAX_BYTES in all). Not below GROUP_MAX_BYTES: one full command must
 * be able to wait for its answer while the next is written, or a remote
 * server's round trip stops the stream at every command (10 ms: 5 % slower
 * with 2 MiB; PROFILE.md, fifteenth pass)... */
#define GROUP_COPIES_MAX (4u * 1024u * 1024u)
_Static_assert(GROUP_COPIES_MAX >= GROUP_MAX_BYTES, "a full command must fit the copies kept");
/* ...and when none of the first few waits for "+" was shorter than
 * GROUP_WAIT_MAX_US (the round trip to a remote server; a wait also holds the
 * server's work on the previous message, hence the shortest), grouping stops
 * for the connection. */
#define GROUP_WAITS_MEASURED 16u
#define GROUP_WAIT_MAX_US    1000u

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

/* The UIDs of an APPENDUID uid-set ("5", "5:9", "3,7:8") in the order of the
 * appended messages (RFC 4315); false unless it names exactly @p count. */
static bool expand_uid_set(const char *set, uint32_t *uids, size_t count)
{
	size_t n = 0;
	for (const char *p = set; *p;) {
		uint32_t range[2];
		int parts = 0;
		for (;;) {
			if (*p < '0' || *p > '9')
				return false;
			char *end;
			unsigned long long value = strtoull(p, &end, 10);
			if (value == 0 || value > UINT32_MAX)
				return false;
			range[parts++] = (uint32_t)value;
			p = end;
			if (*p != ':' || parts == 2)
				break;
			p++;
		}
		uint32_t last = parts == 2 ? range[1] : range[0];
		for (uint32_t uid = range[0];; uid = range[0] < last ? uid + 1 : uid - 1) {
			if (n == count)
				return false;
			uids[n++] = uid;
			if (uid == last)
				break;
		}
		if (*p == ',' && p[1] != '\0')
			p++;
		else if (*p != '\0')
			return false;
	}
	return n == count;
}

/* APPENDUID's UIDVALIDITY, and the UIDs of the command's @p count messages
 * into @p uids; 0 where the server sent none (or a set of another size). */
static uint32_t parse_appenduid(const struct imap_response *resp, uint32_t *uids, size_t count)
{
	uint32_t validity = 0;
	const struct imap_value *set = imap_list_item(&resp->code, 2);
	if (!imap_value_is_atom(imap_list_item(&resp->code, 0), "APPENDUID") ||
	    !imap_value_u32(imap_list_item(&resp->code, 1), &validity) || !set || !set->str ||
	    !expand_uid_set(set->str, uids, count)) {
		memset(uids, 0, count * sizeof(*uids));
		return 0;
	}
	return validity;
}

/* Free the MULTIAPPEND copy kept for a retry, keeping the connection's total. */
static void drop_copy(struct gw_imap *imap, struct imap_pending_append *p)
{
	imap->copies_kept -= p->resend_len;
	free(p->resend);
	p->resend = NULL;
	p->resend_len = 0;
}

static void pending_free(struct gw_imap *imap, struct imap_pending_append *p)
{
	free(p->dropped);
	p->dropped = NULL;
	drop_copy(imap, p);
}

static void group_forget(struct gw_imap *imap)
{
	free(imap->group.folder);
	imap->group.folder = NULL;
	imap->group.open = false;
	imap->group.count = 0;
	imap->group.bytes = 0;
}

/* [first, end): the messages of the APPEND command tagged @p tag. */
static bool find_command(const struct gw_imap *imap, const char *tag, size_t *first, size_t *end)
{
	size_t i = 0;
	while (i < imap->append_count &&
	       (imap->appends[i].queued || strcmp(imap->appends[i].tag, tag) != 0))
		i++;
	if (i == imap->append_count)
		return false;
	*first = i;
	while (++i < imap->append_count && !imap->appends[i].queued &&
	       strcmp(imap->appends[i].tag, tag) == 0)
		;
	*end = i;
	return true;
}

bool imap_append_complete(struct gw_imap *imap, const struct imap_response *resp)
{
	size_t first, end;
	if (resp->kind != GW_IMAP_TAGGED || !resp->tag ||
	    !find_command(imap, resp->tag, &first, &end))
		return false;
	/* An answer to the MULTIAPPEND still being written, instead of the "+" for
	 * its next message: the server ended it. */
	bool cut_short = imap->group.open && strcmp(imap->group.tag, resp->tag) == 0;
	if (cut_short)
		group_forget(imap);
	else if (imap->append_commands > 0)
		imap->append_commands--;
	size_t count = end - first;
	uint32_t retry_after_ms = 0;
	gw_status status = resp->cond == GW_IMAP_OK ? GW_OK : refusal_status(resp, &retry_after_ms);
	if (status == GW_ERR_MESSAGE && (count > 1 || cut_short)) {
		/* Which message the server refused is unknown: each goes again alone. */
		gw_log(imap->ctx, GW_LOG_DEBUG,
		       "MULTIAPPEND of %zu message(s) refused (%s); sending them one by one", count,
		       resp->text ? resp->text : "");
		for (size_t i = first; i < end; i++)
			imap->appends[i].queued = true;
		return true;
	}
	/* Out of the list before any callback runs. */
	struct imap_pending_append *done = gw_xcalloc(count, sizeof(*done));
	memcpy(done, &imap->appends[first], count * sizeof(*done));
	memmove(&imap->appends[first], &imap->appends[end],
	        (imap->append_count - end) * sizeof(*imap->appends));
	imap->append_count -= count;
	uint32_t *uids = gw_xcalloc(count, sizeof(*uids));
	uint32_t validity = status == GW_OK ? parse_appenduid(resp, uids, count) : 0;
	const char *text = status != GW_OK && resp->text ? resp->text : "";
	if (status != GW_OK)
		snprintf(imap->last_response, sizeof(imap->last_response), "%s", text);
	for (size_t i = 0; i < count; i++) {
		struct gw_imap_append_result r = {.struct_size = sizeof(r),
		                                  .user = done[i].user,
		                                  .status = status,
		                                  .uidvalidity = validity,
		                                  .uid = uids[i],
		                                  .retry_after_ms = retry_after_ms,
		                                  .text = text,
		                                  .dropped_flags =
		                                          done[i].dropped ? done[i].dropped : ""};
		done[i].cb(done[i].arg, &r);
		pending_free(imap, &done[i]);
	}
	free(uids);
	free(done);
	return true;
}

static void forget_appends(struct gw_imap *imap)
{
	for (size_t i = 0; i < imap->append_count; i++)
		pending_free(imap, &imap->appends[i]);
	free(imap->appends);
	imap->appends = NULL;
	imap->append_count = imap->append_commands = 0;
	group_forget(imap);
}

void imap_append_reset(struct gw_imap *imap)
{
	forget_appends(imap);
	imap_append_targets_free(imap);
}

gw_status imap_append_close_group(struct gw_imap *imap)
{
	if (!imap->group.open)
		return GW_OK;
	group_forget(imap);
	gw_status st = imap_send_raw(imap, "\r\n", 2, "");
	if (st == GW_OK)
		imap->append_commands++;
	return st;
}

/* Send, each as its own APPEND, the messages of a command refused as a whole.
 * Not inside a MULTIAPPEND still open: the server would take the command line
 * for more of it, and the literal after it for commands. */
static gw_status send_queued(struct gw_imap *imap)
{
	bool any = false;
	for (size_t i = 0; i < imap->append_count && !any; i++)
		any = imap->appends[i].queued;
	gw_status closed = any ? imap_append_close_group(imap) : GW_OK;
	if (closed != GW_OK)
		return closed;
	for (size_t i = 0; i < imap->append_count; i++) {
		struct imap_pending_append *p = &imap->appends[i];
		if (!p->queued)
			continue;
		imap_next_tag(imap, p->tag);
		struct gw_buf cmd = {0};
		gw_buf_puts(&cmd, p->tag);
		gw_buf_append(&cmd, p->resend, p->resend_len);
		gw_status st = imap_send_raw(imap, cmd.data, cmd.len, NULL);
		gw_buf_free(&cmd);
		if (st != GW_OK)
			return st;
		p->queued = false;
		drop_copy(imap, p); /* alone, a refusal is the message's own */
		imap->append_commands++;
	}
	return GW_OK;
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
	gw_status st = imap_append_close_group(imap);
	while (st == GW_OK && imap->append_count > 0) {
		st = imap_check_usable(imap);
		if (st == GW_OK)
			st = send_queued(imap);
		if (st == GW_OK)
			st = read_one(imap);
	}
	if (st != GW_OK)
		forget_appends(imap);
	return st;
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

/* Wait for the "+" that lets a MULTIAPPEND's next message out. *ended: the
 * server answered the command instead (it ended it; the answer was handled). */
static gw_status await_group_continuation(struct gw_imap *imap, bool *ended)
{
	char tag[GW_IMAP_TAG_MAX];
	snprintf(tag, sizeof(tag), "%s", imap->group.tag);
	int64_t started = gw_monotonic_us();
	*ended = false;
	for (;;) {
		struct imap_response resp;
		gw_status st = imap_read(imap, &resp);
		bool plus = st == GW_OK && resp.kind == GW_IMAP_CONTINUATION;
		if (st == GW_OK && resp.kind == GW_IMAP_TAGGED) {
			*ended = strcmp(resp.tag, tag) == 0;
			imap_append_complete(imap, &resp);
		}
		imap_response_free(&resp);
		if (st != GW_OK) {
			forget_appends(imap);
			return st;
		}
		if (*ended)
			return GW_OK;
		if (plus)
			break;
	}
	struct imap_append_group *g = &imap->group;
	uint64_t waited = (uint64_t)(gw_monotonic_us() - started);
	if (g->waits == 0 || waited < g->shortest_wait_us)
		g->shortest_wait_us = waited;
	if (++g->waits == GROUP_WAITS_MEASURED && g->shortest_wait_us > GROUP_WAIT_MAX_US) {
		g->off = true;
		gw_log(imap->ctx, GW_LOG_DEBUG,
		       "MULTIAPPEND off: %.1f ms or more a round trip to %s, pipelined APPENDs "
		       "are faster",
		       (double)g->shortest_wait_us / 1000.0, imap->io.host);
	}
	return GW_OK;
}

/* Whether the ID reply names the server Dovecot. */
static gw_status note_server_name(void *arg, struct gw_imap *imap, const struct imap_response *resp)
{
	(void)imap;
	bool *dovecot = arg;
	const struct imap_value *fields = imap_list_item(&resp->data, 1);
	if (!imap_value_is_atom(imap_list_item(&resp->data, 0), "ID") || !fields ||
	    fields->type != GW_IV_LIST)
		return GW_OK;
	for (size_t i = 0; i + 1 < fields->count; i += 2) {
		const struct imap_value *key = &fields->items[i], *value = &fields->items[i + 1];
		if (key->type == GW_IV_STRING && strcasecmp(key->str, "name") == 0 &&
		    value->type == GW_IV_STRING && strcasecmp(value->str, "Dovecot") == 0)
			*dovecot = true;
	}
	return GW_OK;
}

/* Ask once, after login (a proxy answers for itself before it), which server
 * this is: only Dovecot is known to read a refused MULTIAPPEND to its end. A
 * server without ID, or that does not say, gets the waiting way. */
static gw_status learn_group_mode(struct gw_imap *imap)
{
	struct imap_append_group *g = &imap->group;
	g->server_known = true;
	if (!imap_has_cap(imap, "ID"))
		return GW_OK;
	bool dovecot = false;
	struct imap_response tagged;
	gw_status st = imap_command(imap, "ID NIL", note_server_name, &dovecot, &tagged);
	g->ahead = st == GW_OK && tagged.cond == GW_IMAP_OK && dovecot;
	imap_response_free(&tagged);
	gw_log(imap->ctx, GW_LOG_DEBUG, "MULTIAPPEND to %s: %s", imap->io.host,
	       g->ahead ? "every message without waiting (Dovecot)"
	                : "later messages after the server's \"+\"");
	return st;
}

/* " APPEND "<folder>" (<flags>) "<date>" {<n>[+]}\r\n", the command after its
 * tag; *message_part: where the part of this message (from its flags) starts. */
static gw_status build_command(struct gw_imap *imap, const struct imap_append_target *t,
                               const struct gw_imap_append *m, bool sync, struct gw_buf *cmd,
                               size_t *message_part, struct gw_buf *dropped)
{
	const char *why = NULL;
	char *wire = imap_wire_name(imap, m->folder, &why);
	if (!wire)
		return gw_fail(imap->ctx, GW_ERR_FOLDER, "cannot append to folder \"%s\": %s",
		               m->folder, why);
	gw_buf_puts(cmd, " APPEND ");
	imap_append_quoted(cmd, wire);
	free(wire);
	*message_part = cmd->len;
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

/* The message's bytes are in a file too (a large message the core spooled). */
static bool from_file(const struct gw_imap_append *m)
{
	return m->struct_size >= offsetof(struct gw_imap_append, file_fd) + sizeof(m->file_fd) &&
	       m->in_file && m->file_fd >= 0;
}

/* A large literal read from its file in chunks, so its pages never enter the
 * process (the file's own offset is left alone). */
static gw_status send_from_file(struct gw_imap *imap, const struct gw_imap_append *m,
                                const char *trace)
{
	unsigned char *chunk = gw_xmalloc(FILE_CHUNK);
	gw_status st = GW_OK;
	for (size_t done = 0; st == GW_OK && done < m->size;) {
		size_t want = m->size - done < FILE_CHUNK ? m->size - done : FILE_CHUNK;
		ssize_t n = pread(m->file_fd, chunk, want, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			st = gw_fail(
			        imap->ctx, GW_ERR_SESSION,
			        "cannot read the spooled message (%s); the APPEND is broken off",
			        n < 0 ? strerror(errno) : "file shorter than the message");
			imap->broken = true; /* the literal on the wire cannot be completed */
			break;
		}
		st = imap_send_raw(imap, (const char *)chunk, (size_t)n, done == 0 ? trace : "");
		done += (size_t)n;
	}
	free(chunk);
	return st;
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
		st = from_file(m) ? send_from_file(imap, m, trace)
		                  : imap_send_raw(imap, (const char *)m->data, m->size, trace);
	if (st == GW_OK)
		st = imap_send_raw(imap, "\r\n", 2, "");
	return st;
}

static struct imap_pending_append *push_pending(struct gw_imap *imap, const char *tag,
                                                const struct gw_imap_append *m,
                                                gw_imap_append_cb cb, void *arg,
                                                struct gw_buf *dropped)
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
	return p;
}

static bool literal_is_sync(const struct gw_imap *imap, size_t size)
{
	if (imap_has_cap(imap, "LITERAL+"))
		return false;
	return !(imap_has_cap(imap, "LITERAL-") && size <= LITERAL_MINUS_MAX);
}

/* A message that may share a MULTIAPPEND. LITERAL+ is needed for the first
 * message, which goes out with the command line. */
static bool may_group(const struct gw_imap *imap, const struct gw_imap_append *m)
{
	return imap->pipeline_depth > 1 && !imap->group.off && m->size <= GROUP_MAX_MEMBER &&
	       !from_file(m) && imap_has_cap(imap, "MULTIAPPEND") && imap_has_cap(imap, "LITERAL+");
}

/* One APPEND command of its own. @p cmd: " APPEND ..." up to the literal. */
static gw_status send_single(struct gw_imap *imap, const struct gw_imap_append *m,
                             struct gw_buf *cmd, bool sync, gw_imap_append_cb cb, void *arg,
                             struct gw_buf *dropped)
{
	char tag[GW_IMAP_TAG_MAX];
	imap_next_tag(imap, tag);
	struct gw_buf line = {0};
	gw_buf_puts(&line, tag);
	gw_buf_append(&line, cmd->data, cmd->len);
	gw_status st = GW_OK;
	if (sync) {
		bool refused = false; /* then st holds the refusal's status */
		st = imap_send_raw(imap, line.data, line.len, NULL);
		if (st == GW_OK)
			st = await_continuation(imap, tag, m->folder, &refused);
	}
	if (st == GW_OK)
		st = send_literal(imap, m, &line, sync);
	if (st == GW_OK) {
		push_pending(imap, tag, m, cb, arg, dropped);
		imap->append_commands++;
	}
	gw_buf_free(&line);
	return st;
}

/* The message as an APPEND of its own without its tag: @p cmd (" APPEND ...
 * {n+}\r\n"), the message and the command's CRLF, in one block of exactly
 * that size. It is the copy kept for a resend and what a group's bytes are
 * sent from, so a grouped message is copied once. */
static char *single_command(const struct gw_buf *cmd, const struct gw_imap_append *m, size_t *len)
{
	*len = cmd->len + m->size + 2;
	char *copy = gw_xmalloc(*len);
	memcpy(copy, cmd->data, cmd->len);
	if (m->size > 0)
		memcpy(copy + cmd->len, m->data, m->size);
	memcpy(copy + cmd->len + m->size, "\r\n", 2);
	return copy;
}

/* Add the message to the MULTIAPPEND of its folder, opening one if needed.
 * @p cmd: " APPEND <folder> <message part>" with a non-synchronising literal,
 * @p message_part where the message part starts. The first message goes out
 * with the command line; a later one's part follows it as it is where the
 * server reads refused commands to their end, else with a synchronising
 * literal, and its bytes only after the server's "+". *ended: the server
 * ended the command instead; the message was not sent. */
static gw_status send_in_group(struct gw_imap *imap, const struct gw_imap_append *m,
                               const struct gw_buf *cmd, size_t message_part, gw_imap_append_cb cb,
                               void *arg, struct gw_buf *dropped, bool *ended)
{
	*ended = false;
	size_t copy_len;
	char *copy = single_command(cmd, m, &copy_len);
	size_t from = message_part; /* what goes out now: copy[from, copy_len - 2) */
	gw_status st = GW_OK;
	if (!imap->group.open) {
		imap->group.open = true;
		imap_next_tag(imap, imap->group.tag);
		imap->group.folder = gw_xstrdup(m->folder);
		from = 0;
		if (imap_trace_enabled()) {
			char *line = gw_xasprintf("%s%.*s", imap->group.tag, (int)(cmd->len - 2),
			                          cmd->data);
			imap_trace(imap->ctx, "C", line, strlen(line));
			free(line);
		}
		st = imap_send_raw(imap, imap->group.tag, strlen(imap->group.tag), "");
	} else if (imap->group.ahead) {
		if (imap_trace_enabled())
			imap_trace(imap->ctx, "C", cmd->data + from, cmd->len - from - 2);
	} else {
		/* "{n+}\r\n" -> "{n}\r\n": wait to be asked for the bytes. */
		struct gw_buf line = {0};
		gw_buf_append(&line, cmd->data + from, cmd->len - from - 4);
		gw_buf_puts(&line, "}\r\n");
		if (imap_trace_enabled())
			imap_trace(imap->ctx, "C", line.data, line.len - 2);
		st = imap_send_raw(imap, line.data, line.len, "");
		gw_buf_free(&line);
		if (st == GW_OK)
			st = await_group_continuation(imap, ended);
		from = cmd->len; /* the message's bytes */
	}
	if (st == GW_OK && !*ended) {
		char trace[64];
		snprintf(trace, sizeof(trace), "{%zu bytes}", m->size);
		st = imap_send_raw(imap, copy + from, copy_len - 2 - from, trace);
	}
	if (st != GW_OK || *ended) {
		free(copy);
		return st;
	}
	struct imap_pending_append *p = push_pending(imap, imap->group.tag, m, cb, arg, dropped);
	p->resend = copy; /* the pending entry owns the copy now */
	p->resend_len = copy_len;
	imap->copies_kept += copy_len;
	imap->group.count++;
	imap->group.bytes += m->size;
	return GW_OK;
}

gw_status imap_append(struct gw_imap *imap, const struct gw_imap_append *message,
                      gw_imap_append_cb cb, void *arg)
{
	gw_status st = imap_check_usable(imap);
	if (st == GW_OK)
		st = check_message(imap, message, cb);
	if (st != GW_OK)
		return st;
	bool grouped = may_group(imap, message);
	if (grouped && !imap->group.server_known)
		st = learn_group_mode(imap);
	if (st == GW_OK && imap->group.open &&
	    (!grouped || strcmp(imap->group.folder, message->folder) != 0 ||
	     imap->group.count >= GROUP_MAX_MESSAGES ||
	     imap->group.bytes + message->size > GROUP_MAX_BYTES))
		st = imap_append_close_group(imap);
	if (st == GW_OK && !find_target(imap, message->folder))
		st = imap_mailbox_info(imap, message->folder, NULL);
	if (st != GW_OK)
		return st;
	const struct imap_append_target *t = find_target(imap, message->folder);
	if (t->append_limit > 0 && message->size > t->append_limit)
		return gw_fail(imap->ctx, GW_ERR_MESSAGE,
		               "message of %zu bytes is larger than the destination accepts in "
		               "\"%s\" (APPENDLIMIT %" PRIu64 " bytes); not sent",
		               message->size, message->folder, t->append_limit);
	/* Room in the pipeline, and for the copies: an answer read may queue a
	 * refused command's messages, whose copies go only once they are sent. */
	for (;;) {
		st = send_queued(imap);
		/* A message that joins the open group takes no command of its own:
		 * the group was closed above unless this message fits it. */
		bool joins = grouped && imap->group.open;
		if (st != GW_OK || joins ||
		    (imap->append_commands < imap->pipeline_depth &&
		     (!grouped || imap->copies_kept <= GROUP_COPIES_MAX)))
			break;
		st = imap_append_close_group(imap); /* answers only between commands */
		if (st == GW_OK)
			st = read_one(imap);
		if (st != GW_OK)
			break;
	}
	if (st != GW_OK)
		return st;

	bool sync = literal_is_sync(imap, message->size);
	struct gw_buf cmd = {0}, dropped = {0};
	size_t message_part = 0;
	st = build_command(imap, t, message, sync, &cmd, &message_part, &dropped);
	bool ended = false;
	if (st == GW_OK && grouped)
		st = send_in_group(imap, message, &cmd, message_part, cb, arg, &dropped, &ended);
	/* Not grouped, or the server ended the group before this message: alone. */
	if (st == GW_OK && (!grouped || ended))
		st = send_single(imap, message, &cmd, sync, cb, arg, &dropped);
	gw_buf_free(&cmd);
	gw_buf_free(&dropped);
	return st;
}
