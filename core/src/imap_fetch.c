/* UID FETCH: the metadata scan of a folder, and pipelined streaming of
 * message bodies into a gw_fetch_target. */
#include "imap_fetch.h"

#include <ctype.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap_internal.h"
#include "log.h"
#include "spool.h"
#include "util.h"

/* ---- INTERNALDATE and flags ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : days[m - 1];
}

/* Read exactly @p n digits. */
static bool digits(const char **p, unsigned n, unsigned *out)
{
	unsigned v = 0;
	for (unsigned i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + (unsigned)((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

static bool parse_month(const char **p, unsigned *month)
{
	static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	for (unsigned i = 0; i < 12; i++) {
		if (strncasecmp(*p, names + 3 * i, 3) == 0) {
			*p += 3;
			*month = i + 1;
			return true;
		}
	}
	return false;
}

bool gw_imap_parse_internaldate(const char *text, int64_t *epoch, int32_t *tz_offset_min)
{
	const char *p = text;
	unsigned day, month, year, hour, min, sec, zh, zm;
	if (*p == ' ')
		p++;
	if (!isdigit((unsigned char)*p))
		return false;
	if (!digits(&p, isdigit((unsigned char)p[1]) ? 2 : 1, &day))
		return false;
	if (!expect(&p, '-') || !parse_month(&p, &month) || !expect(&p, '-') ||
	    !digits(&p, 4, &year) || !expect(&p, ' ') || !digits(&p, 2, &hour) ||
	    !expect(&p, ':') || !digits(&p, 2, &min) || !expect(&p, ':') || !digits(&p, 2, &sec) ||
	    !expect(&p, ' '))
		return false;
	char sign = *p++;
	if ((sign != '+' && sign != '-') || !digits(&p, 2, &zh) || !digits(&p, 2, &zm) || *p)
		return false;
	if (day < 1 || day > days_in_month(year, month) || hour > 23 || min > 59 || sec > 60 ||
	    zh > 23 || zm > 59)
		return false;
	int32_t offset = (int32_t)(zh * 60 + zm) * (sign == '-' ? -1 : 1);
	*epoch = days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec -
	         (int64_t)offset * 60;
	*tz_offset_min = offset;
	return true;
}

uint32_t gw_imap_flag_bit(const char *flag)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} flags[] = {{"\\Seen", GW_FLAG_SEEN},       {"\\Answered", GW_FLAG_ANSWERED},
	             {"\\Flagged", GW_FLAG_FLAGGED}, {"\\Deleted", GW_FLAG_DELETED},
	             {"\\Draft", GW_FLAG_DRAFT},     {"$Forwarded", GW_FLAG_FORWARDED}};
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (strcasecmp(flag, flags[i].name) == 0)
			return flags[i].bit;
	return 0;
}

bool gw_imap_is_keyword(const char *flag)
{
	return flag[0] != '\\' && flag[0] != '\0' && gw_imap_flag_bit(flag) == 0;
}

/* ---- scan ---- */

struct scan_state {
	struct gw_imap *imap;
	const struct gw_scan_request *request;
	bool want_message_id;
	gw_meta_cb cb;
	void *arg;
	const char **keywords;
	size_t keyword_cap;
	size_t reported;
};

/* The item list of "* n FETCH (...)", or NULL. */
static const struct imap_value *fetch_items(const struct imap_response *resp)
{
	if (resp->kind != GW_IMAP_UNTAGGED || resp->cond != GW_IMAP_COND_NONE ||
	    !imap_value_is_atom(imap_list_item(&resp->data, 1), "FETCH"))
		return NULL;
	const struct imap_value *items = imap_list_item(&resp->data, 2);
	return items && items->type == GW_IV_LIST ? items : NULL;
}

static void collect_flags(struct scan_state *s, const struct imap_value *flags,
                          struct gw_message_meta *meta)
{
	if (flags->count > s->keyword_cap) {
		s->keyword_cap = flags->count;
		s->keywords = gw_xrealloc(s->keywords, s->keyword_cap * sizeof(*s->keywords));
	}
	for (size_t i = 0; i < flags->count; i++) {
		const struct imap_value *f = &flags->items[i];
		if (f->type != GW_IV_ATOM)
			continue;
		meta->flags |= gw_imap_flag_bit(f->str);
		if (gw_imap_is_keyword(f->str))
			s->keywords[meta->keyword_count++] = f->str;
	}
	meta->keywords = meta->keyword_count ? s->keywords : NULL;
}

static char *message_id_of(const struct imap_value *items)
{
	const struct imap_value *header = imap_list_get_prefix(items, "BODY[HEADER.FIELDS", NULL);
	if (!header || header->type != GW_IV_STRING)
		return NULL;
	return gw_message_id_of((const unsigned char *)header->str, header->len);
}

static gw_status scan_untagged(void *arg, struct gw_imap *imap, const struct imap_response *resp)
{
	struct scan_state *s = arg;
	const struct imap_value *items = fetch_items(resp);
	if (!items)
		return GW_OK;
	struct gw_message_meta meta = {.struct_size = sizeof(meta)};
	const struct imap_value *date = imap_list_get(items, "INTERNALDATE");
	const struct imap_value *flags = imap_list_get(items, "FLAGS");
	/* Flag updates of other clients arrive as FETCH responses too: skip them. */
	if (!imap_value_u32(imap_list_get(items, "UID"), &meta.uid) ||
	    !imap_value_u64(imap_list_get(items, "RFC822.SIZE"), &meta.size) ||
	    !imap_value_is_string(date) || !flags || flags->type != GW_IV_LIST)
		return GW_OK;
	/* "n:*" always includes the last message, even when its UID is below n. */
	if (meta.uid < s->request->uid_min)
		return GW_OK;
	if (!gw_imap_parse_internaldate(date->str, &meta.internal_date, &meta.tz_offset_min))
		gw_log(imap->ctx, GW_LOG_WARN, "UID %" PRIu32 ": unreadable INTERNALDATE \"%s\"",
		       meta.uid, date->str);
	collect_flags(s, flags, &meta);
	char *message_id = s->want_message_id ? message_id_of(items) : NULL;
	meta.message_id = message_id;
	gw_status st = s->cb(s->arg, &meta);
	free(message_id);
	s->reported++;
	return st;
}

/* "UID FETCH n:* (...)": the metadata a scan asks for. */
static char *scan_command(const struct gw_scan_request *request)
{
	return gw_xasprintf("UID FETCH %" PRIu32 ":* (UID RFC822.SIZE INTERNALDATE FLAGS%s)",
	                    request->uid_min ? request->uid_min : 1,
	                    (request->want & GW_SCAN_MESSAGE_ID)
	                            ? " BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
	                            : "");
}

static gw_status check_selected(struct gw_imap *imap)
{
	gw_status st = imap_check_usable(imap);
	if (st == GW_OK && !imap->selected)
		st = gw_fail(imap->ctx, GW_ERR_FOLDER, "no folder is selected");
	return st;
}

gw_status imap_scan(struct gw_imap *imap, const struct gw_scan_request *request, gw_meta_cb cb,
                    void *arg)
{
	gw_status st = check_selected(imap);
	if (st != GW_OK)
		return st;
	if (!request || request->struct_size < offsetof(struct gw_scan_request, uid_min) +
	                                               sizeof(request->uid_min))
		return gw_fail(imap->ctx, GW_ERR_CONFIG, "scan request from an unknown ABI");
	if (imap->exists == 0)
		return GW_OK; /* some servers answer "n:*" in an empty folder with BAD */

	struct scan_state s = {.imap = imap, .request = request, .cb = cb, .arg = arg};
	s.want_message_id = (request->want & GW_SCAN_MESSAGE_ID) != 0;
	char *cmd = scan_command(request);
	struct imap_response tagged;
	st = imap_command(imap, cmd, scan_untagged, &s, &tagged);
	free(cmd);
	free(s.keywords);
	if (st == GW_OK && tagged.cond != GW_IMAP_OK)
		st = imap_fail_response(imap, &tagged, GW_ERR_FOLDER, "cannot scan the folder");
	imap_response_free(&tagged);
	if (st == GW_OK)
		gw_log(imap->ctx, GW_LOG_DEBUG, "scanned %zu messages", s.reported);
	return st;
}

/* Metadata of chosen UIDs (a sink looking for a message it may hold). */
gw_status imap_fetch_meta(struct gw_imap *imap, const uint32_t *uids, size_t count, gw_meta_cb cb,
                          void *arg)
{
	enum { UIDS_PER_COMMAND = 256 };
	gw_status st = check_selected(imap);
	if (st != GW_OK)
		return st;
	if ((count > 0 && !uids) || !cb)
		return gw_fail(imap->ctx, GW_ERR_CONFIG, "invalid metadata request");
	struct gw_scan_request request = {.struct_size = sizeof(request), .uid_min = 0};
	struct scan_state s = {.imap = imap, .request = &request, .cb = cb, .arg = arg};
	for (size_t first = 0; first < count && st == GW_OK; first += UIDS_PER_COMMAND) {
		size_t end = count - first > UIDS_PER_COMMAND ? first + UIDS_PER_COMMAND : count;
		struct gw_buf cmd = {0};
		gw_buf_puts(&cmd, "UID FETCH ");
		for (size_t i = first; i < end; i++)
			gw_buf_printf(&cmd, "%s%" PRIu32, i > first ? "," : "", uids[i]);
		gw_buf_puts(&cmd, " (UID RFC822.SIZE INTERNALDATE FLAGS)");
		struct imap_response tagged;
		st = imap_command(imap, cmd.data, scan_untagged, &s, &tagged);
		gw_buf_free(&cmd);
		if (st == GW_OK && tagged.cond != GW_IMAP_OK)
			st = imap_fail_response(imap, &tagged, GW_ERR_FOLDER,
			                        "cannot read message metadata");
		imap_response_free(&tagged);
	}
	free(s.keywords);
	return st;
}

/* No folder is open: a selection failed, or none was sent yet. */
#define NO_FOLDER SIZE_MAX

/* A pipelined EXAMINE of @p folder is answered: GW_OK with *status as its untagged
 * responses said (*examining is reset for the next); else GW_ERR_THROTTLED (the
 * pipeline stops, *stop set unless it was) or GW_ERR_FOLDER (the folder will not
 * open; *reason says why, to free). */
static gw_status examine_answered(struct gw_imap *imap, const struct imap_response *resp,
                                  const char *folder, struct gw_folder_status *examining,
                                  struct gw_folder_status *status, gw_status *stop, char **reason)
{
	*status = *examining;
	status->exists = imap->exists;
	*examining = (struct gw_folder_status){.struct_size = sizeof(*examining)};
	imap->selected = resp->cond == GW_IMAP_OK;
	if (resp->cond == GW_IMAP_OK)
		return GW_OK;
	uint32_t retry_after;
	if (imap_response_throttled(resp, &retry_after)) {
		if (*stop == GW_OK)
			*stop = imap_fail_response(imap, resp, GW_ERR_THROTTLED,
			                           "the server throttles selecting");
		return GW_ERR_THROTTLED;
	}
	snprintf(imap->last_response, sizeof(imap->last_response), "%s", resp->text);
	*reason = gw_xasprintf("cannot select folder \"%s\": %s", folder, resp->text);
	return GW_ERR_FOLDER;
}

/* ---- scan of several folders ----
 *
 * Each folder's EXAMINE and its "UID FETCH 1:*" go out without waiting, up
 * to pipeline_depth commands in flight, as for bodies: the metadata between
 * a folder's tagged EXAMINE and its tagged FETCH are that folder's. */

struct scan_command {
	char tag[GW_IMAP_TAG_MAX]; /* first: see imap_take_answered */
	size_t folder;
	bool examine;
};

struct scan_pipe {
	struct gw_imap *imap;
	const struct gw_scan_request *requests;
	size_t count;
	const struct gw_scan_target *target;
	struct scan_command *queue;
	size_t queued;
	size_t sent;                       /* folders whose commands are out */
	bool sent_examine;                 /* folder `sent`'s EXAMINE is out, its FETCH not yet */
	struct gw_folder_status examining; /* what the EXAMINE being answered says */
	size_t open_folder;                /* whose metadata arrive now (NO_FOLDER: none) */
	struct scan_state s;               /* the open folder's */
	gw_status stop;
};

static void scan_pipe_end(struct scan_pipe *p, size_t folder, gw_status st, const char *fmt, ...)
        GW_PRINTF(4, 5);

static void scan_pipe_end(struct scan_pipe *p, size_t folder, gw_status st, const char *fmt, ...)
{
	char *reason = NULL;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		reason = gw_xvasprintf(fmt, ap);
		va_end(ap);
	}
	p->target->folder_end(p->target->arg, folder, st, reason);
	free(reason);
}

static gw_status scan_pipe_fill(struct scan_pipe *p)
{
	struct gw_imap *imap = p->imap;
	struct gw_buf out = {0};
	while (p->stop == GW_OK && p->queued < imap->pipeline_depth && p->sent < p->count) {
		const struct gw_scan_request *r = &p->requests[p->sent];
		struct scan_command *c = &p->queue[p->queued];
		*c = (struct scan_command){.folder = p->sent, .examine = !p->sent_examine};
		if (c->examine) {
			struct gw_buf cmd = {0};
			const char *why = NULL;
			if (!imap_select_command(imap, r->folder, true, &cmd, &why)) {
				if (p->queued > 0)
					break; /* reported in order, once the folders before it are
					          done */
				scan_pipe_end(p, p->sent++, GW_ERR_FOLDER,
				              "cannot select folder \"%s\": %s", r->folder, why);
				continue;
			}
			imap_next_tag(imap, c->tag);
			gw_buf_printf(&out, "%s %s\r\n", c->tag, cmd.data);
			gw_buf_free(&cmd);
			p->sent_examine = true;
		} else {
			imap_next_tag(imap, c->tag);
			char *cmd = scan_command(r);
			gw_buf_printf(&out, "%s %s\r\n", c->tag, cmd);
			free(cmd);
			p->sent_examine = false;
			p->sent++;
		}
		p->queued++;
	}
	return imap_send_queued(imap, &out);
}

static void scan_pipe_examined(struct scan_pipe *p, const struct scan_command *c,
                               const struct imap_response *resp)
{
	struct gw_imap *imap = p->imap;
	const struct gw_scan_request *r = &p->requests[c->folder];
	struct gw_folder_status status;
	char *reason = NULL;
	p->open_folder = NO_FOLDER;
	gw_status st =
	        examine_answered(imap, resp, r->folder, &p->examining, &status, &p->stop, &reason);
	if (st == GW_ERR_FOLDER)
		p->target->folder_end(p->target->arg, c->folder, st, reason);
	free(reason);
	if (st != GW_OK)
		return;
	st = p->target->folder_begin(p->target->arg, c->folder, &status);
	if (st != GW_OK) {
		if (p->stop == GW_OK)
			p->stop = st;
		return;
	}
	free(p->s.keywords);
	p->s = (struct scan_state){.imap = imap,
	                           .request = r,
	                           .want_message_id = (r->want & GW_SCAN_MESSAGE_ID) != 0,
	                           .cb = p->target->meta,
	                           .arg = p->target->arg};
	p->open_folder = c->folder;
}

static void scan_pipe_scanned(struct scan_pipe *p, const struct scan_command *c,
                              const struct imap_response *resp)
{
	if (p->open_folder != c->folder)
		return; /* not opened: its end was said already, or the scan stops */
	p->open_folder = NO_FOLDER;
	/* Some servers answer "n:*" in an empty folder with BAD. */
	if (resp->cond == GW_IMAP_OK || p->imap->exists == 0) {
		gw_log(p->imap->ctx, GW_LOG_DEBUG, "scanned %zu messages of \"%s\"", p->s.reported,
		       p->requests[c->folder].folder);
		scan_pipe_end(p, c->folder, GW_OK, NULL);
		return;
	}
	uint32_t retry_after;
	if (imap_response_throttled(resp, &retry_after)) {
		if (p->stop == GW_OK)
			p->stop = imap_fail_response(p->imap, resp, GW_ERR_THROTTLED,
			                             "the server throttles scanning");
		return;
	}
	snprintf(p->imap->last_response, sizeof(p->imap->last_response), "%s", resp->text);
	scan_pipe_end(p, c->folder, GW_ERR_FOLDER, "cannot scan the folder: %s", resp->text);
}

static void scan_pipe_complete(struct scan_pipe *p, const struct imap_response *resp)
{
	struct scan_command c;
	if (!imap_take_answered(p->imap, p->queue, &p->queued, sizeof(c), resp, &c))
		return;
	if (c.examine)
		scan_pipe_examined(p, &c, resp);
	else
		scan_pipe_scanned(p, &c, resp);
}

static gw_status scan_pipe_loop(struct scan_pipe *p)
{
	struct gw_imap *imap = p->imap;
	for (;;) {
		if (gw_cancel_level() >= 2) {
			imap->broken = true; /* replies are still on their way */
			return gw_fail(imap->ctx, GW_ERR_CANCELLED, "scan interrupted");
		}
		if (gw_cancel_level() >= 1 && p->stop == GW_OK)
			p->stop = gw_fail(imap->ctx, GW_ERR_CANCELLED,
			                  "scan stopped: the run is stopping");
		gw_status st = scan_pipe_fill(p);
		if (st != GW_OK)
			return st;
		if (p->queued == 0)
			return p->stop;
		struct imap_response resp;
		st = imap_read(imap, &resp);
		if (st != GW_OK) {
			imap_response_free(&resp);
			return st;
		}
		if (resp.kind == GW_IMAP_UNTAGGED && p->queue[0].examine) {
			imap_select_untagged(&p->examining, imap, &resp);
		} else if (resp.kind == GW_IMAP_UNTAGGED && p->open_folder != NO_FOLDER) {
			st = scan_untagged(&p->s, imap, &resp);
			if (st != GW_OK && p->stop == GW_OK)
				p->stop = st;
		} else if (resp.kind == GW_IMAP_TAGGED) {
			scan_pipe_complete(p, &resp);
		}
		imap_response_free(&resp);
	}
}

gw_status imap_scan_folders(struct gw_imap *imap, const struct gw_scan_request *requests,
                            size_t count, const struct gw_scan_target *target)
{
	gw_status st = imap_check_usable(imap);
	for (size_t i = 0; st == GW_OK && i < count; i++)
		if (requests[i].struct_size <
		            offsetof(struct gw_scan_request, folder) + sizeof(requests[i].folder) ||
		    !requests[i].folder)
			st = gw_fail(imap->ctx, GW_ERR_CONFIG, "invalid scan request %zu", i);
	if (st == GW_OK && (!target ||
	                    target->struct_size < offsetof(struct gw_scan_target, folder_end) +
	                                                  sizeof(target->folder_end) ||
	                    !target->folder_begin || !target->meta || !target->folder_end))
		st = gw_fail(imap->ctx, GW_ERR_CONFIG, "incomplete scan target");
	if (st != GW_OK || count == 0)
		return st;
	struct scan_pipe p = {.imap = imap,
	                      .requests = requests,
	                      .count = count,
	                      .target = target,
	                      .queue = gw_xcalloc(imap->pipeline_depth, sizeof(*p.queue)),
	                      .examining = {.struct_size = sizeof(p.examining)},
	                      .open_folder = NO_FOLDER};
	st = scan_pipe_loop(&p);
	free(p.s.keywords);
	free(p.queue);
	return st;
}

/* ---- fetch ----
 *
 * Bodies are requested with UID sets: one "UID FETCH <set> (BODY.PEEK[])"
 * carries up to fetch_uids_per_command UIDs (1: one command per message, for
 * servers that mishandle sets), and up to pipeline_depth commands are in
 * flight. A server answers a set in its own order (UID order in practice), so
 * every untagged FETCH is mapped back to its request by the UID it names;
 * whatever a command's tagged reply finds undelivered is reported failed.
 *
 * Several folders (fetch_folders): each folder's EXAMINE goes into the same
 * pipeline ahead of its UID FETCH commands. A server runs one connection's
 * commands in order, so the bodies that arrive after a folder's EXAMINE
 * completed are that folder's (and a failed EXAMINE leaves no folder selected:
 * its FETCH commands fail, they cannot read another folder), while the next
 * folder's commands are already on their way: a folder switch costs no round
 * trip of its own. */

/* One requested UID. */
struct fetch_slot {
	uint32_t uid;
	bool got_body; /* delivered, refused or reported: nothing more to say about it */
};

/* One requested folder: its slots [first, end). */
struct fetch_folder {
	const char *name; /* UTF-8; NULL: the folder selected before (fetch) */
	uint32_t uidvalidity;
	uint64_t limit; /* larger bodies are refused: the client's and the request's cap */
	size_t first, end;
};

/* One command in flight: the EXAMINE of a folder, or a UID FETCH of the slots
 * [first, end) of one, sorted by UID. */
struct inflight {
	char tag[GW_IMAP_TAG_MAX]; /* first: see imap_take_answered */
	size_t folder;
	bool examine;
	size_t first, end;
	size_t cursor; /* where the next answer most likely is (servers answer in UID order) */
};

struct fetch_state {
	struct gw_imap *imap;
	const struct gw_fetch_target *target;
	struct fetch_folder *folders;
	size_t folder_count;
	size_t examined;                   /* folders [0, examined) have had their EXAMINE sent */
	size_t sending;                    /* the folder of the next slot to request */
	size_t open_folder;                /* whose bodies arrive now (NO_FOLDER: none) */
	struct gw_folder_status examining; /* what the EXAMINE being answered says */
	struct fetch_slot *slots;          /* the request's UIDs, each command's share sorted */
	size_t slot_count;
	struct inflight *queue; /* commands in flight, oldest first */
	size_t queued;
	size_t next;    /* index of the next slot to request */
	gw_status stop; /* non-OK: request nothing more, drain, return it */

	bool delivering; /* begin() accepted a message whose end() is still due */
	uint32_t current_uid;
	gw_status current_status; /* first failure of data() */
};

static void note_target_status(struct fetch_state *fs, gw_status st)
{
	/* A failed message is the target's business; anything wider stops the fetch. */
	if (st != GW_OK && st != GW_ERR_MESSAGE && fs->stop == GW_OK)
		fs->stop = st;
}

static void report_failed(struct fetch_state *fs, uint32_t uid, gw_status st, const char *fmt, ...)
        GW_PRINTF(4, 5);

static void report_failed(struct fetch_state *fs, uint32_t uid, gw_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *reason = gw_xvasprintf(fmt, ap);
	va_end(ap);
	fs->target->failed(fs->target->arg, uid, st, reason);
	free(reason);
}

static struct fetch_slot *waiting_in(struct fetch_state *fs, struct inflight *c, uint32_t uid)
{
	if (c->cursor < c->end && !fs->slots[c->cursor].got_body && fs->slots[c->cursor].uid == uid)
		return &fs->slots[c->cursor++];
	for (size_t i = c->first; i < c->end; i++) {
		if (!fs->slots[i].got_body && fs->slots[i].uid == uid) {
			c->cursor = i + 1;
			return &fs->slots[i];
		}
	}
	return NULL;
}

/* The requested slot an answer belongs to: among the open folder's commands.
 * Without a UID in the answer (servers must send it) only a single-UID
 * command can be meant. */
static struct fetch_slot *waiting_entry(struct fetch_state *fs, bool uid_known, uint32_t uid)
{
	for (size_t q = 0; q < fs->queued; q++) {
		struct inflight *c = &fs->queue[q];
		if (c->examine || c->folder != fs->open_folder)
			continue;
		if (uid_known) {
			struct fetch_slot *slot = waiting_in(fs, c, uid);
			if (slot)
				return slot;
			continue;
		}
		size_t waiting = 0;
		struct fetch_slot *first = NULL;
		for (size_t i = c->first; i < c->end; i++) {
			if (!fs->slots[i].got_body && waiting++ == 0)
				first = &fs->slots[i];
		}
		if (waiting > 0)
			return waiting == 1 ? first : NULL;
	}
	return NULL;
}

static gw_status deliver_chunk(void *arg, const void *data, size_t len)
{
	struct fetch_state *fs = arg;
	return fs->target->data(fs->target->arg, data, len);
}

static void *target_room(void *arg, size_t *len)
{
	struct fetch_state *fs = arg;
	return fs->target->room(fs->target->arg, len);
}

/* Start delivering a body of @p size bytes for @p e; false if it is not wanted. */
static bool begin_body(struct fetch_state *fs, struct fetch_slot *e, uint64_t size)
{
	e->got_body = true;
	uint64_t limit = fs->folders[fs->open_folder].limit;
	if (size > limit) {
		report_failed(fs, e->uid, GW_ERR_MESSAGE,
		              "message of %" PRIu64 " bytes exceeds the limit of %" PRIu64 " bytes",
		              size, limit);
		return false;
	}
	gw_status st = fs->target->begin(fs->target->arg, e->uid, size);
	if (st != GW_OK) {
		note_target_status(fs, st);
		return false;
	}
	fs->delivering = true;
	fs->current_uid = e->uid;
	fs->current_status = GW_OK;
	return true;
}

static bool is_body_item(const struct imap_value *name)
{
	return name && name->type == GW_IV_ATOM && strcasecmp(name->str, "BODY[]") == 0;
}

/* Literal hook: a BODY[] literal of a FETCH response goes straight to the target. */
static gw_status body_hook(void *arg, struct imap_parser *p, const struct imap_value *top,
                           const struct imap_value *list, uint64_t size, bool *consumed)
{
	struct fetch_state *fs = arg;
	if (!imap_value_is_atom(imap_list_item(top, 1), "FETCH") ||
	    list != imap_list_item(top, 2) || list->count % 2 != 1 ||
	    !is_body_item(&list->items[list->count - 1]))
		return GW_OK;
	*consumed = true;
	uint32_t uid = 0;
	bool uid_known = imap_value_u32(imap_list_get(list, "UID"), &uid);
	struct fetch_slot *e = waiting_entry(fs, uid_known, uid);
	if (!e || !begin_body(fs, e, size))
		return imap_parser_stream_literal(p, size, NULL, NULL, NULL);
	bool has_room = GW_FETCH_TARGET_HAS(fs->target, room);
	return imap_parser_stream_literal_into(p, size, has_room ? target_room : NULL,
	                                       deliver_chunk, fs, &fs->current_status);
}

/* A body small enough to come as a quoted string (or a literal the hook did not see). */
static void deliver_inline_body(struct fetch_state *fs, const struct imap_value *items)
{
	const struct imap_value *body = imap_list_get(items, "BODY[]");
	if (!body || body->type != GW_IV_STRING)
		return;
	uint32_t uid = 0;
	bool uid_known = imap_value_u32(imap_list_get(items, "UID"), &uid);
	struct fetch_slot *e = waiting_entry(fs, uid_known, uid);
	if (!e || !begin_body(fs, e, body->len))
		return;
	fs->current_status = fs->target->data(fs->target->arg, body->str, body->len);
}

/* An untagged FETCH ended: finish the message its BODY[] started. */
static void finish_message(struct fetch_state *fs, const struct imap_response *resp)
{
	const struct imap_value *items = fetch_items(resp);
	if (!items)
		return;
	if (!fs->delivering)
		deliver_inline_body(fs, items);
	if (!fs->delivering)
		return;
	fs->delivering = false;
	uint32_t uid;
	if (imap_value_u32(imap_list_get(items, "UID"), &uid) && uid != fs->current_uid) {
		report_failed(fs, fs->current_uid, GW_ERR_MESSAGE,
		              "the server sent UID %" PRIu32 " in answer to UID %" PRIu32, uid,
		              fs->current_uid);
		return;
	}
	if (fs->current_status != GW_OK) {
		report_failed(fs, fs->current_uid, fs->current_status,
		              "the bytes of UID %" PRIu32 " could not be stored", fs->current_uid);
		note_target_status(fs, fs->current_status);
		return;
	}
	note_target_status(fs, fs->target->end(fs->target->arg, fs->current_uid));
}

/* Nothing more will be said about the slots of folder @p f. */
static void drop_folder_slots(struct fetch_state *fs, size_t f)
{
	for (size_t s = fs->folders[f].first; s < fs->folders[f].end; s++)
		fs->slots[s].got_body = true;
}

/* A folder's EXAMINE is answered: its bodies come next, or none of them will. */
static void complete_examine(struct fetch_state *fs, const struct inflight *c,
                             const struct imap_response *resp)
{
	struct gw_imap *imap = fs->imap;
	const struct fetch_folder *f = &fs->folders[c->folder];
	struct gw_folder_status status;
	char *reason = NULL;
	fs->open_folder = NO_FOLDER;
	gw_status st =
	        examine_answered(imap, resp, f->name, &fs->examining, &status, &fs->stop, &reason);
	if (st != GW_OK) {
		/* None of its messages come now; throttled, they stay to do after the pause. */
		drop_folder_slots(fs, c->folder);
		if (st == GW_ERR_FOLDER) {
			fs->target->request(fs->target->arg, c->folder);
			fs->target->failed(fs->target->arg, 0, st, reason);
		}
		free(reason);
		return;
	}
	uint32_t found = status.uidvalidity;
	if (found != f->uidvalidity) {
		/* Its UIDs no longer name the scanned messages: deliver none of them. */
		drop_folder_slots(fs, c->folder);
		fs->target->request(fs->target->arg, c->folder);
		char *why = gw_xasprintf("UIDVALIDITY changed during the run (%" PRIu32
		                         " -> %" PRIu32 "); scanning again",
		                         f->uidvalidity, found);
		fs->target->failed(fs->target->arg, 0, GW_ERR_SESSION, why);
		if (fs->stop == GW_OK)
			fs->stop = gw_fail(imap->ctx, GW_ERR_SESSION, "%s", why);
		free(why);
		return;
	}
	fs->open_folder = c->folder;
	gw_log(imap->ctx, GW_LOG_DEBUG, "selected \"%s\" in the fetch pipeline", f->name);
	fs->target->request(fs->target->arg, c->folder);
}

/* The tagged reply of one UID FETCH: its messages are done, one way or another. */
static void complete_fetch(struct fetch_state *fs, const struct inflight *c,
                           const struct imap_response *resp)
{
	uint32_t retry_after;
	bool throttled = resp->cond != GW_IMAP_OK && imap_response_throttled(resp, &retry_after);
	if (throttled && fs->stop == GW_OK)
		fs->stop = imap_fail_response(fs->imap, resp, GW_ERR_THROTTLED,
		                              "the server throttles fetching");
	if (resp->cond != GW_IMAP_OK && !throttled)
		snprintf(fs->imap->last_response, sizeof(fs->imap->last_response), "%s",
		         resp->text);
	for (size_t s = c->first; s < c->end; s++) {
		struct fetch_slot *e = &fs->slots[s];
		if (e->got_body || throttled)
			continue;
		e->got_body = true;
		if (resp->cond == GW_IMAP_OK)
			report_failed(fs, e->uid, GW_ERR_MESSAGE,
			              "UID %" PRIu32 " no longer exists", e->uid);
		else
			report_failed(fs, e->uid, GW_ERR_MESSAGE,
			              "the server refused UID %" PRIu32 ": %s", e->uid, resp->text);
	}
}

static void complete_command(struct fetch_state *fs, const struct imap_response *resp)
{
	struct inflight c;
	if (!imap_take_answered(fs->imap, fs->queue, &fs->queued, sizeof(c), resp, &c))
		return;
	if (c.examine)
		complete_examine(fs, &c, resp);
	else
		complete_fetch(fs, &c, resp);
}

static int cmp_slot_uid(const void *x, const void *y)
{
	const struct fetch_slot *a = x, *b = y;
	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

/* "3,7,9:12": the UIDs of slots [first, end), which are sorted. */
static void put_uid_set(struct gw_buf *out, const struct fetch_slot *slots, size_t first,
                        size_t end)
{
	for (size_t i = first; i < end;) {
		size_t run = i;
		while (run + 1 < end && slots[run + 1].uid == slots[run].uid + 1)
			run++;
		gw_buf_printf(out, "%s%" PRIu32, i > first ? "," : "", slots[i].uid);
		if (run > i)
			gw_buf_printf(out, ":%" PRIu32, slots[run].uid);
		i = run + 1;
	}
}

/* The folder the next slot to request belongs to. */
static size_t sending_folder(struct fetch_state *fs)
{
	while (fs->next >= fs->folders[fs->sending].end)
		fs->sending++;
	return fs->sending;
}

/* Queue folder @p f's EXAMINE; false if its name cannot be sent (*why). */
static bool queue_examine(struct fetch_state *fs, struct gw_buf *out, size_t f, const char **why)
{
	struct gw_imap *imap = fs->imap;
	struct gw_buf cmd = {0};
	if (!imap_select_command(imap, fs->folders[f].name, true, &cmd, why))
		return false;
	struct inflight *c = &fs->queue[fs->queued++];
	*c = (struct inflight){.folder = f, .examine = true};
	imap_next_tag(imap, c->tag);
	gw_buf_printf(out, "%s %s\r\n", c->tag, cmd.data);
	gw_buf_free(&cmd);
	return true;
}

/* Keep pipeline_depth commands in flight: each folder's EXAMINE (fetch_folders),
 * then UID FETCH commands of up to fetch_uids of its UIDs. */
static gw_status fill_pipeline(struct fetch_state *fs)
{
	struct gw_imap *imap = fs->imap;
	struct gw_buf batch = {0};
	while (fs->stop == GW_OK && fs->queued < imap->pipeline_depth &&
	       fs->next < fs->slot_count) {
		size_t f = sending_folder(fs);
		if (f >= fs->examined) {
			const char *why = NULL;
			if (queue_examine(fs, &batch, f, &why)) {
				fs->examined = f + 1;
				continue;
			}
			if (fs->queued > 0)
				break; /* reported in order, once the folders before it are done */
			fs->examined = f + 1;
			fs->next = fs->folders[f].end;
			drop_folder_slots(fs, f);
			fs->target->request(fs->target->arg, f);
			report_failed(fs, 0, GW_ERR_FOLDER, "cannot select folder \"%s\": %s",
			              fs->folders[f].name, why);
			continue;
		}
		struct inflight *c = &fs->queue[fs->queued++];
		*c = (struct inflight){.folder = f, .first = fs->next, .cursor = fs->next};
		size_t end = fs->folders[f].end;
		c->end = end - fs->next > imap->fetch_uids ? fs->next + imap->fetch_uids : end;
		fs->next = c->end;
		qsort(&fs->slots[c->first], c->end - c->first, sizeof(*fs->slots), cmp_slot_uid);
		imap_next_tag(imap, c->tag);
		gw_buf_printf(&batch, "%s UID FETCH ", c->tag);
		put_uid_set(&batch, fs->slots, c->first, c->end);
		gw_buf_puts(&batch, " (BODY.PEEK[])\r\n");
	}
	return imap_send_queued(imap, &batch);
}

static gw_status check_target(struct gw_imap *imap, const struct gw_fetch_target *target,
                              bool folders)
{
	if (!target || !GW_FETCH_TARGET_HAS(target, failed) || !target->begin || !target->data ||
	    !target->end)
		return gw_fail(imap->ctx, GW_ERR_CONFIG, "incomplete fetch target");
	if (folders && !GW_FETCH_TARGET_HAS(target, request))
		return gw_fail(imap->ctx, GW_ERR_CONFIG, "fetch target without request()");
	return GW_OK;
}

static bool valid_request(const struct gw_fetch_request *request, bool folders)
{
	size_t need =
	        folders ? offsetof(struct gw_fetch_request, uidvalidity) +
	                          sizeof(request->uidvalidity)
	                : offsetof(struct gw_fetch_request, max_size) + sizeof(request->max_size);
	return request && request->struct_size >= need && (request->count == 0 || request->uids) &&
	       (!folders || request->folder);
}

static gw_status fetch_loop(struct fetch_state *fs)
{
	struct gw_imap *imap = fs->imap;
	for (;;) {
		if (gw_cancel_level() >= 2) {
			imap->broken = true; /* replies are still on their way */
			return gw_fail(imap->ctx, GW_ERR_CANCELLED, "fetch interrupted");
		}
		if (gw_cancel_level() >= 1 && fs->stop == GW_OK)
			fs->stop = GW_ERR_CANCELLED;
		gw_status st = fill_pipeline(fs);
		if (st != GW_OK)
			return st;
		if (fs->queued == 0 && fs->stop == GW_ERR_CANCELLED)
			return gw_fail(imap->ctx, GW_ERR_CANCELLED,
			               "fetch stopped: the run is stopping");
		if (fs->queued == 0)
			return fs->stop;
		struct imap_response resp;
		st = imap_read(imap, &resp);
		if (st != GW_OK) {
			if (fs->delivering)
				report_failed(fs, fs->current_uid, GW_ERR_SESSION,
				              "the connection was lost while fetching UID %" PRIu32,
				              fs->current_uid);
			fs->delivering = false;
			imap_response_free(&resp);
			return st;
		}
		/* Commands run in order: while the oldest is an EXAMINE, the untagged
		 * responses are its own. */
		if (resp.kind == GW_IMAP_UNTAGGED && fs->queue[0].examine)
			imap_select_untagged(&fs->examining, imap, &resp);
		else if (resp.kind == GW_IMAP_UNTAGGED)
			finish_message(fs, &resp);
		else if (resp.kind == GW_IMAP_TAGGED)
			complete_command(fs, &resp);
		imap_response_free(&resp);
	}
}

/* Stream the folders' slots (fs->folders set, slot uids filled) into the target. */
static gw_status run_fetch(struct fetch_state *fs)
{
	struct gw_imap *imap = fs->imap;
	fs->queue = gw_xcalloc(imap->pipeline_depth, sizeof(*fs->queue));
	fs->examining.struct_size = sizeof(fs->examining);
	imap->parser.hook = body_hook;
	imap->parser.hook_arg = fs;
	gw_status st = fetch_loop(fs);
	imap->parser.hook = NULL;
	imap->parser.hook_arg = NULL;
	free(fs->queue);
	return st;
}

static uint64_t smaller_limit(uint64_t limit, uint64_t max_size)
{
	return max_size && max_size < limit ? max_size : limit;
}

gw_status imap_fetch(struct gw_imap *imap, const struct gw_fetch_request *request,
                     const struct gw_fetch_target *target)
{
	gw_status st = check_selected(imap);
	if (st == GW_OK && !valid_request(request, false))
		st = gw_fail(imap->ctx, GW_ERR_CONFIG, "invalid fetch request");
	if (st == GW_OK)
		st = check_target(imap, target, false);
	if (st != GW_OK)
		return st;
	/* The selected folder, already open. */
	struct fetch_folder folder = {.end = request->count,
	                              .limit = smaller_limit(imap->max_literal, request->max_size)};
	struct fetch_state fs = {.imap = imap,
	                         .target = target,
	                         .folders = &folder,
	                         .folder_count = 1,
	                         .examined = 1,
	                         .open_folder = 0,
	                         .slot_count = request->count};
	fs.slots = gw_xcalloc(request->count ? request->count : 1, sizeof(*fs.slots));
	for (size_t i = 0; i < request->count; i++)
		fs.slots[i].uid = request->uids[i];
	st = run_fetch(&fs);
	free(fs.slots);
	return st;
}

gw_status imap_fetch_folders(struct gw_imap *imap, const struct gw_fetch_request *requests,
                             size_t count, const struct gw_fetch_target *target)
{
	gw_status st = imap_check_usable(imap);
	for (size_t i = 0; st == GW_OK && i < count; i++)
		if (!valid_request(&requests[i], true))
			st = gw_fail(imap->ctx, GW_ERR_CONFIG, "invalid fetch request %zu", i);
	if (st == GW_OK)
		st = check_target(imap, target, true);
	if (st != GW_OK || count == 0)
		return st;
	struct fetch_state fs = {.imap = imap,
	                         .target = target,
	                         .folders = gw_xcalloc(count, sizeof(*fs.folders)),
	                         .folder_count = count,
	                         .open_folder = NO_FOLDER};
	for (size_t i = 0; i < count; i++)
		fs.slot_count += requests[i].count;
	fs.slots = gw_xcalloc(fs.slot_count ? fs.slot_count : 1, sizeof(*fs.slots));
	size_t at = 0;
	for (size_t i = 0; i < count; i++) {
		fs.folders[i] = (struct fetch_folder){
		        .name = requests[i].folder,
		        .uidvalidity = requests[i].uidvalidity,
		        .limit = smaller_limit(imap->max_literal, requests[i].max_size),
		        .first = at,
		        .end = at + requests[i].count};
		for (size_t u = 0; u < requests[i].count; u++)
			fs.slots[at++].uid = requests[i].uids[u];
	}
	st = run_fetch(&fs);
	free(fs.slots);
	free(fs.folders);
	return st;
}
