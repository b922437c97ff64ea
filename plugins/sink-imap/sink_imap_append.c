/* Messages into the destination: pipelined APPEND whose results (APPENDUID
 * or a refusal) arrive later, flush that waits for every tagged OK, and
 * lookup of a message appended before a crash. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sink_imap.h"

/* ---- refusals that came after append() returned ---- */

bool imap_sink_late_contains(struct late_refusals *late, const char *key)
{
	bool found = false;
	pthread_mutex_lock(&late->lock);
	for (size_t i = 0; i < late->count && !found; i++)
		found = strcmp(late->keys[i], key) == 0;
	pthread_mutex_unlock(&late->lock);
	return found;
}

void imap_sink_late_add(struct late_refusals *late, const char *key)
{
	if (!key[0] || imap_sink_late_contains(late, key))
		return;
	pthread_mutex_lock(&late->lock);
	char(*grown)[40] = realloc(late->keys, (late->count + 1) * sizeof(*late->keys));
	if (grown) {
		late->keys = grown;
		snprintf(late->keys[late->count++], sizeof(*late->keys), "%s", key);
	}
	pthread_mutex_unlock(&late->lock);
}

void imap_sink_late_remove(struct late_refusals *late, const char *key)
{
	pthread_mutex_lock(&late->lock);
	for (size_t i = 0; i < late->count; i++) {
		if (strcmp(late->keys[i], key) == 0) {
			memmove(late->keys[i], late->keys[i + 1],
			        (late->count - i - 1) * sizeof(*late->keys));
			late->count--;
			break;
		}
	}
	pthread_mutex_unlock(&late->lock);
}

/* ---- records of APPENDs in flight ---- */

static void record_free(struct append_record *r)
{
	if (!r)
		return;
	free(r->text);
	free(r);
}

void imap_sink_records_free(struct imap_session *s)
{
	for (size_t i = 0; i < s->record_count; i++)
		record_free(s->records[i]);
	free(s->records);
	s->records = NULL;
	s->record_count = 0;
}

static bool add_record(struct imap_session *s, struct append_record *r)
{
	struct append_record **grown =
	        realloc(s->records, (s->record_count + 1) * sizeof(*s->records));
	if (!grown)
		return false;
	s->records = grown;
	s->records[s->record_count++] = r;
	return true;
}

static void drop_record(struct imap_session *s, struct append_record *r)
{
	for (size_t i = 0; i < s->record_count; i++) {
		if (s->records[i] == r) {
			memmove(&s->records[i], &s->records[i + 1],
			        (s->record_count - i - 1) * sizeof(*s->records));
			s->record_count--;
			break;
		}
	}
	record_free(r);
}

/* The client calls this when an APPEND's tagged response arrives. */
static void on_result(void *arg, const struct gw_imap_append_result *result)
{
	struct imap_session *s = arg;
	struct append_record *r = result->user;
	r->done = true;
	r->status = result->status;
	if (result->status == GW_OK && r->id_out && result->uid)
		snprintf(r->id_out, GW_SINK_ID_MAX, "%" PRIu32 ":%" PRIu32, result->uidvalidity,
		         result->uid);
	if (result->status != GW_OK) {
		r->text = strdup(result->text);
		r->retry_after_ms = result->retry_after_ms;
	}
	if (result->dropped_flags[0])
		s->host->log(s->ctx, GW_LOG_WARN,
		             "the destination keeps no such flags in this folder, left out: %s",
		             result->dropped_flags);
}

/* ---- append ---- */

static struct append_record *new_record(struct imap_session *s, const struct gw_sink_item *item,
                                        char *id_out)
{
	struct append_record *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->session = s;
	r->id_out = id_out;
	if (item->origin_key)
		snprintf(r->origin_key, sizeof(r->origin_key), "%s", item->origin_key);
	return r;
}

/* Wait for this message's own result (pipeline_depth 1, or a message refused
 * late before): its refusal is then reported for this message. */
static gw_status append_alone(struct imap_session *s, struct append_record *r)
{
	gw_status st = s->api->append_wait(s->imap);
	if (st != GW_OK)
		return st; /* the record stays: flush reports it uncertain */
	imap_sink_late_remove(&s->sink->late, r->origin_key);
	if (r->status == GW_OK)
		return GW_OK;
	gw_status status = r->status;
	if (status == GW_ERR_THROTTLED && r->retry_after_ms)
		s->host->set_retry_after(s->ctx, r->retry_after_ms);
	st = s->host->fail(s->ctx, status, "the destination refused the message: %s",
	                   r->text ? r->text : "");
	drop_record(s, r);
	return st;
}

gw_status imap_sink_append(void *session, void *folder, const struct gw_sink_item *item,
                           char message_id[GW_SINK_ID_MAX])
{
	struct imap_session *s = session;
	const struct sink_folder *f = folder;
	message_id[0] = '\0';
	const struct gw_message *m = item ? item->message : NULL;
	if (!f || !m || !m->meta)
		return s->host->fail(s->ctx, GW_ERR_CONFIG, "append without folder or message");
	const struct gw_message_meta *meta = m->meta;
	struct append_record *r = new_record(s, item, message_id);
	if (!r || !add_record(s, r)) {
		free(r);
		return s->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
	}
	bool alone = s->sink->cfg->pipeline_depth == 1 ||
	             imap_sink_late_contains(&s->sink->late, r->origin_key);
	struct gw_imap_append req = {
	        .struct_size = sizeof(req),
	        .folder = f->name,
	        .data = m->data,
	        .size = m->size,
	        .flags = meta->flags,
	        .keyword_count = meta->keyword_count,
	        .keywords = meta->keywords,
	        .has_internal_date = meta->internal_date != 0,
	        .internal_date = meta->internal_date,
	        .tz_offset_min = meta->tz_offset_min,
	        .user = r,
	};
	s->selected = NULL; /* the client may select the folder to learn its flags */
	gw_status st = s->api->append(s->imap, &req, on_result, s);
	if (st != GW_OK) {
		drop_record(s, r); /* not sent: no result will come */
		return st;
	}
	return alone ? append_alone(s, r) : GW_OK;
}

/* ---- flush ---- */

/* How far a failure reaches, for picking the one flush reports. */
static int severity(gw_status st)
{
	switch (st) {
	case GW_ERR_MAILBOX: return 6;
	case GW_ERR_AUTH: return 5;
	case GW_ERR_THROTTLED: return 4;
	case GW_ERR_SESSION: return 3;
	case GW_ERR_FOLDER: return 2;
	case GW_ERR_MESSAGE: return 1;
	default: return 0;
	}
}

struct flush_outcome {
	gw_status worst;
	const char *text;
	uint32_t retry_after_ms;
	size_t refused;   /* message- or folder-level refusals */
	size_t uncertain; /* no result before the connection failed */
};

static void weigh(struct imap_session *s, struct append_record *r, struct flush_outcome *o)
{
	gw_status st = r->done ? r->status : GW_ERR_SESSION;
	if (!r->done)
		o->uncertain++;
	if (st == GW_OK)
		return;
	if (r->done && (st == GW_ERR_MESSAGE || st == GW_ERR_FOLDER)) {
		o->refused++;
		imap_sink_late_add(&s->sink->late, r->origin_key);
	}
	if (r->retry_after_ms > o->retry_after_ms)
		o->retry_after_ms = r->retry_after_ms;
	if (severity(st) > severity(o->worst)) {
		o->worst = st;
		o->text = r->text ? r->text : "no answer before the connection failed";
	}
}

gw_status imap_sink_flush(void *session)
{
	struct imap_session *s = session;
	gw_status st = s->api->append_wait(s->imap);
	struct flush_outcome o = {.worst = GW_OK, .text = ""};
	for (size_t i = 0; i < s->record_count; i++)
		weigh(s, s->records[i], &o);
	gw_status result = GW_OK;
	if (st != GW_OK)
		result = st; /* the client said why */
	else if (o.worst == GW_ERR_MESSAGE || o.worst == GW_ERR_FOLDER)
		/* Nothing tells the core which message it was: the batch is retried, and
		 * the refused ones are then sent alone so their refusal is theirs. */
		result = s->host->fail(s->ctx, GW_ERR_SESSION,
		                       "the destination refused %zu message(s) after they were "
		                       "sent (%s); they are retried one at a time",
		                       o.refused, o.text);
	else if (o.worst != GW_OK) {
		if (o.worst == GW_ERR_THROTTLED && o.retry_after_ms)
			s->host->set_retry_after(s->ctx, o.retry_after_ms);
		result = s->host->fail(s->ctx, o.worst, "the destination refused an APPEND: %s",
		                       o.text);
	}
	imap_sink_records_free(s);
	return result;
}

/* ---- lookup ---- */

struct candidates {
	uint32_t *uids;
	size_t count;
	bool oom;
	const struct gw_message_meta *want;
	uint32_t match[64];
	size_t match_count;
};

static void on_uid(void *arg, uint32_t uid)
{
	struct candidates *c = arg;
	uint32_t *grown = c->oom ? NULL : realloc(c->uids, (c->count + 1) * sizeof(*c->uids));
	if (!grown) {
		c->oom = true;
		return;
	}
	c->uids = grown;
	c->uids[c->count++] = uid;
}

static gw_status on_meta(void *arg, const struct gw_message_meta *got)
{
	struct candidates *c = arg;
	if (c->want->size > 0 && got->size != c->want->size)
		return GW_OK;
	if (c->want->internal_date != 0 && got->internal_date != c->want->internal_date)
		return GW_OK;
	if (c->match_count < sizeof(c->match) / sizeof(c->match[0]))
		c->match[c->match_count++] = got->uid;
	return GW_OK;
}

static bool quotable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			return false;
	return strlen(s) < 900;
}

static void add_search_date(char *out, size_t size, const char *key, int64_t epoch)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	time_t t = (time_t)epoch;
	struct tm tm;
	if (!gmtime_r(&t, &tm))
		return;
	size_t len = strlen(out);
	snprintf(out + len, size - len, " %s %d-%.3s-%04d", key, tm.tm_mday, months + 3 * tm.tm_mon,
	         tm.tm_year + 1900);
}

/* Criteria for the message: its Message-ID, else its exact size around its
 * date (SINCE/BEFORE ignore time and zone, hence a day either side). */
static bool build_criteria(const struct gw_message_meta *meta, char *out, size_t size)
{
	out[0] = '\0';
	if (meta->message_id && quotable(meta->message_id)) {
		size_t o = (size_t)snprintf(out, size, "HEADER Message-ID \"");
		for (const char *p = meta->message_id; *p && o + 3 < size; p++) {
			if (*p == '"' || *p == '\\')
				out[o++] = '\\';
			out[o++] = *p;
		}
		snprintf(out + o, size - o, "\"");
		return true;
	}
	if (meta->size == 0 || meta->internal_date == 0)
		return false;
	snprintf(out, size, "LARGER %" PRIu64 " SMALLER %" PRIu64, meta->size - 1, meta->size + 1);
	add_search_date(out, size, "SINCE", meta->internal_date - 86400);
	add_search_date(out, size, "BEFORE", meta->internal_date + 2 * 86400);
	return true;
}

static bool claimed(const struct sink_folder *f, uint32_t uid)
{
	for (size_t i = 0; i < f->claimed_count; i++)
		if (f->claimed[i] == uid)
			return true;
	return false;
}

static bool claim(struct sink_folder *f, uint32_t uid)
{
	uint32_t *grown = realloc(f->claimed, (f->claimed_count + 1) * sizeof(*f->claimed));
	if (!grown)
		return false;
	f->claimed = grown;
	f->claimed[f->claimed_count++] = uid;
	return true;
}

static gw_status select_for_lookup(struct imap_session *s, struct sink_folder *f)
{
	if (s->selected == f)
		return GW_OK;
	struct gw_folder_status status = {.struct_size = sizeof(status)};
	gw_status st = s->api->select(s->imap, f->name, false, &status);
	if (st != GW_OK)
		return st;
	f->uidvalidity = status.uidvalidity;
	s->selected = f;
	return GW_OK;
}

gw_status imap_sink_lookup(void *session, void *folder, const struct gw_sink_item *item,
                           bool *found, char message_id[GW_SINK_ID_MAX])
{
	struct imap_session *s = session;
	struct sink_folder *f = folder;
	*found = false;
	message_id[0] = '\0';
	const struct gw_message_meta *meta = item && item->message ? item->message->meta : NULL;
	char criteria[1024];
	if (!f || !meta || !build_criteria(meta, criteria, sizeof(criteria)))
		return GW_OK; /* nothing to recognise it by: the core copies it again */
	gw_status st = s->api->append_wait(s->imap);
	if (st == GW_OK)
		st = select_for_lookup(s, f);
	struct candidates c = {.want = meta};
	if (st == GW_OK)
		st = s->api->search(s->imap, criteria, on_uid, &c);
	if (st == GW_OK && c.oom)
		st = s->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
	if (st == GW_OK && c.count > 0)
		st = s->api->fetch_meta(s->imap, c.uids, c.count, on_meta, &c);
	free(c.uids);
	if (st != GW_OK)
		return st;
	/* Identical size and INTERNALDATE (and Message-ID when known) in the same
	 * folder is taken as the same message; each UID answers one lookup only. */
	for (size_t i = 0; i < c.match_count; i++) {
		if (claimed(f, c.match[i]))
			continue;
		if (!claim(f, c.match[i]))
			return s->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
		*found = true;
		snprintf(message_id, GW_SINK_ID_MAX, "%" PRIu32 ":%" PRIu32, f->uidvalidity,
		         c.match[i]);
		break;
	}
	return GW_OK;
}
