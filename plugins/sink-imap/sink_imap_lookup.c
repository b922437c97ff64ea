/* Lookup of a message appended before a crash whose state was not committed
 * (README.md, "After a crash: lookup"). The core hands over the exact bytes,
 * their SHA-256 and Message-ID, and the destination ids its state already
 * records for look-alikes; a candidate must have the same size and
 * Message-ID, and its bytes are compared wherever that alone could pick the
 * wrong copy. Never a guess from size and date. */
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sink_imap.h"

/* Candidates whose bytes are compared, at most, per lookup. */
#define MAX_COMPARED 64

struct candidates {
	uint32_t *uids;
	size_t count;
	bool oom;
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

static bool quotable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			return false;
	return strlen(s) < 900;
}

/* The exact size, and the Message-ID where the message has one the search
 * syntax can carry; false if there is nothing to search by. */
static bool build_criteria(const struct gw_message *m, bool *by_message_id, char *out, size_t size)
{
	const char *mid = m->meta ? m->meta->message_id : NULL;
	*by_message_id = false;
	if (m->size == 0)
		return false;
	size_t o = (size_t)snprintf(out, size, "LARGER %zu SMALLER %zu", m->size - 1, m->size + 1);
	if (!mid || !quotable(mid))
		return true;
	o += (size_t)snprintf(out + o, size - o, " HEADER Message-ID \"");
	for (const char *p = mid; *p && o + 3 < size; p++) {
		if (*p == '"' || *p == '\\')
			out[o++] = '\\';
		out[o++] = *p;
	}
	snprintf(out + o, size - o, "\"");
	*by_message_id = true;
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

/* A run killed with APPENDs in flight leaves them in the server's input, and
 * its session goes on storing them after this one has connected (a MULTIAPPEND
 * sent whole is stored when the server gets to it): a message looked up before
 * its copy lands would be copied again. So the first lookup in a folder waits
 * until the folder's UIDNEXT has held still for SETTLE_MS (at most
 * SETTLE_MAX_MS; only runs that resolve messages left pending pay it). */
#define SETTLE_MS     250
#define SETTLE_MAX_MS 10000

static gw_status select_for_lookup(struct imap_session *s, struct sink_folder *f)
{
	if (s->selected == f)
		return GW_OK;
	struct gw_folder_status status = {.struct_size = sizeof(status)};
	gw_status st = s->api->select(s->imap, f->name, false, &status);
	for (unsigned waited = 0; st == GW_OK && !f->settled && waited < SETTLE_MAX_MS;
	     waited += SETTLE_MS) {
		uint32_t before = status.uidnext;
		struct timespec pause = {.tv_sec = 0, .tv_nsec = SETTLE_MS * 1000000L};
		nanosleep(&pause, NULL);
		st = s->api->select(s->imap, f->name, false, &status);
		f->settled = st == GW_OK && status.uidnext == before;
	}
	if (st != GW_OK)
		return st;
	f->settled = true;
	f->uidvalidity = status.uidvalidity;
	s->selected = f;
	return GW_OK;
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return a < b ? -1 : a > b;
}

/* The UID of a recorded id "uidvalidity:uid" of this folder; 0 if it names
 * no UID here (empty: the server had no UIDPLUS when it was appended). */
static uint32_t recorded_uid(const struct sink_folder *f, const char *id)
{
	unsigned long validity, uid;
	char end;
	if (!id || sscanf(id, "%lu:%lu%c", &validity, &uid, &end) != 2)
		return 0;
	return validity == f->uidvalidity && uid <= UINT32_MAX ? (uint32_t)uid : 0;
}

/* Remove candidates the state already records and those an earlier lookup of
 * this session took. A recorded copy whose UID is unknown (no APPENDUID)
 * takes the lowest remaining candidate: UIDs grow with every APPEND, so it is
 * the copy appended first. */
static void exclude_taken(const struct sink_folder *f, const struct gw_sink_item *item,
                          struct candidates *c)
{
	if (c->count == 0)
		return;
	qsort(c->uids, c->count, sizeof(*c->uids), cmp_u32);
	size_t unknown = 0;
	bool has_recorded = GW_SINK_ITEM_HAS(item, recorded_count) && item->recorded_ids;
	size_t n = has_recorded ? item->recorded_count : 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t uid = recorded_uid(f, item->recorded_ids[i]);
		unknown += uid == 0;
		for (size_t j = 0; uid && j < c->count; j++)
			if (c->uids[j] == uid)
				c->uids[j] = 0;
	}
	size_t kept = 0;
	for (size_t j = 0; j < c->count; j++) {
		if (c->uids[j] == 0 || claimed(f, c->uids[j]))
			continue;
		if (unknown > 0) {
			unknown--;
			continue;
		}
		c->uids[kept++] = c->uids[j];
	}
	c->count = kept;
}

/* ---- comparing bytes ---- */

struct compare {
	EVP_MD_CTX *md;
	const char *want; /* lower-case hex SHA-256 */
	uint32_t current; /* UID being received, 0 if none */
	uint32_t match;   /* first candidate (in fetch order) with the same bytes */
};

static gw_status on_begin(void *arg, uint32_t uid, uint64_t size)
{
	struct compare *cmp = arg;
	(void)size;
	cmp->current = 0;
	if (cmp->match || EVP_DigestInit_ex(cmp->md, EVP_sha256(), NULL) != 1)
		return GW_ERR_MESSAGE; /* decided already: skip the rest */
	cmp->current = uid;
	return GW_OK;
}

static gw_status on_data(void *arg, const void *bytes, size_t length)
{
	struct compare *cmp = arg;
	if (cmp->current && EVP_DigestUpdate(cmp->md, bytes, length) != 1)
		cmp->current = 0;
	return GW_OK;
}

static gw_status on_end(void *arg, uint32_t uid)
{
	struct compare *cmp = arg;
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (!cmp->current || cmp->current != uid ||
	    EVP_DigestFinal_ex(cmp->md, digest, &len) != 1 || len != 32)
		return GW_OK;
	cmp->current = 0;
	static const char hex[] = "0123456789abcdef";
	char text[65];
	for (unsigned i = 0; i < len; i++) {
		text[2 * i] = hex[digest[i] >> 4];
		text[2 * i + 1] = hex[digest[i] & 15];
	}
	text[64] = '\0';
	if (strcmp(text, cmp->want) == 0)
		cmp->match = uid;
	return GW_OK;
}

static void on_failed(void *arg, uint32_t uid, gw_status status, const char *reason)
{
	struct compare *cmp = arg;
	(void)uid;
	(void)status;
	(void)reason;
	cmp->current = 0;
}

/* The first of @p c whose BODY[] has the SHA-256 @p want; 0 if none. */
static gw_status find_same_bytes(struct imap_session *s, const struct candidates *c,
                                 const char *want, uint64_t size, uint32_t *match)
{
	*match = 0;
	struct compare cmp = {.md = EVP_MD_CTX_new(), .want = want};
	if (!cmp.md)
		return s->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
	struct gw_fetch_request request = {.struct_size = sizeof(request),
	                                   .uids = c->uids,
	                                   .count = c->count < MAX_COMPARED ? c->count
	                                                                    : MAX_COMPARED,
	                                   .max_size = size};
	struct gw_fetch_target target = {.struct_size = sizeof(target),
	                                 .arg = &cmp,
	                                 .begin = on_begin,
	                                 .data = on_data,
	                                 .end = on_end,
	                                 .failed = on_failed};
	gw_status st = s->api->fetch(s->imap, &request, &target);
	EVP_MD_CTX_free(cmp.md);
	if (st == GW_ERR_MESSAGE)
		st = GW_OK; /* a candidate vanished or was skipped: not this message */
	*match = st == GW_OK ? cmp.match : 0;
	return st;
}

/* ---- lookup ---- */

static gw_status search_candidates(struct imap_session *s, struct sink_folder *f,
                                   const char *criteria, struct candidates *c)
{
	gw_status st = s->api->append_wait(s->imap);
	if (st == GW_OK)
		st = select_for_lookup(s, f);
	if (st == GW_OK)
		st = s->api->search(s->imap, criteria, on_uid, c);
	if (st == GW_OK && c->oom)
		st = s->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
	return st;
}

/* Which candidate is this message: with a Message-ID and the size, a single
 * candidate is it; otherwise the bytes decide. Without bytes (an older core)
 * only a Message-ID match is taken. */
static gw_status pick(struct imap_session *s, const struct gw_message *m, bool by_message_id,
                      const struct candidates *c, uint32_t *uid)
{
	*uid = 0;
	if (c->count == 0)
		return GW_OK;
	if (by_message_id && c->count == 1) {
		*uid = c->uids[0];
		return GW_OK;
	}
	if (m->data && m->sha256_hex)
		return find_same_bytes(s, c, m->sha256_hex, m->size, uid);
	if (by_message_id)
		*uid = c->uids[0];
	return GW_OK;
}

gw_status imap_sink_lookup(void *session, void *folder, const struct gw_sink_item *item,
                           bool *found, char message_id[GW_SINK_ID_MAX])
{
	struct imap_session *s = session;
	struct sink_folder *f = folder;
	*found = false;
	message_id[0] = '\0';
	const struct gw_message *m = item ? item->message : NULL;
	char criteria[1100];
	bool by_message_id;
	if (!f || !m || !build_criteria(m, &by_message_id, criteria, sizeof(criteria)))
		return GW_OK; /* nothing to recognise it by: the core copies it again */
	if (!by_message_id && !(m->data && m->sha256_hex))
		return GW_OK; /* the size alone proves nothing */
	struct candidates c = {0};
	gw_status st = search_candidates(s, f, criteria, &c);
	uint32_t uid = 0;
	if (st == GW_OK) {
		exclude_taken(f, item, &c);
		st = pick(s, m, by_message_id, &c, &uid);
	}
	free(c.uids);
	if (st != GW_OK || uid == 0)
		return st;
	if (!claim(f, uid))
		return s->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
	*found = true;
	snprintf(message_id, GW_SINK_ID_MAX, "%" PRIu32 ":%" PRIu32, f->uidvalidity, uid);
	return GW_OK;
}
