/* Messages into the destination: pipelined APPEND whose results (APPENDUID
 * or a refusal) arrive later, and flush that waits for every tagged OK. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A refusal that concerns this message (or its folder) only, not the connection or mailbox. */
static bool refuses_message_only(gw_status st)
{
	return st == GW_ERR_MESSAGE || st == GW_ERR_FOLDER;
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
	if (r->outcome && refuses_message_only(result->status)) {
		r->outcome->status = result->status;
		snprintf(r->outcome->reason, sizeof(r->outcome->reason),
		         "the destination refused the message: %s", result->text);
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
	if (GW_SINK_ITEM_HAS(item, outcome) && item->outcome &&
	    item->outcome->struct_size >=
	            offsetof(struct gw_sink_outcome, reason) + sizeof(item->outcome->reason))
		r->outcome = item->outcome;
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
	bool alone = s->sink->cfg->endpoint.pipeline_depth == 1 ||
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
	        .in_file = GW_MESSAGE_HAS(m, file_fd) && m->in_file,
	        .file_fd = GW_MESSAGE_HAS(m, file_fd) ? m->file_fd : -1,
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
	size_t refused;   /* message- or folder-level refusals the core cannot pin on a message */
	size_t uncertain; /* no result before the connection failed */
};

static void weigh(struct imap_session *s, struct append_record *r, struct flush_outcome *o)
{
	gw_status st = r->done ? r->status : GW_ERR_SESSION;
	if (!r->done)
		o->uncertain++;
	if (st == GW_OK)
		return;
	if (r->done && refuses_message_only(st) && r->outcome)
		return; /* reported in the item's outcome: the rest of the batch stands */
	if (r->done && refuses_message_only(st)) {
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
