/* One attempt at one mailbox (see migrate.h).
 *
 * Memory: the metadata of every message of the mailbox goes into the
 * selection (a temporary SQLite database, selection.h), keywords interned
 * per mailbox; message bytes only pass through the worker's spool, one
 * message at a time. What stays in memory and grows: the state's done UIDs
 * of the folder being scanned (4 bytes a message, freed after its scan) and
 * the report's lists of skipped and failed UIDs. */
#include "migrate.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "selection.h"
#include "util.h"

/* ---- pipelines ---- */

static void ctx_reset(struct gw_ctx *ctx)
{
	ctx->status = GW_OK;
	ctx->error[0] = '\0';
	ctx->retry_after_ms = 0;
}

/* The text a plugin gave with its failure, or a generic one naming the operation. */
static const char *ctx_error(const struct gw_ctx *ctx, const char *operation, gw_status status,
                             char *fallback, size_t fallback_size)
{
	if (ctx->error[0] != '\0')
		return ctx->error;
	snprintf(fallback, fallback_size, "%s failed (%s error)", operation,
	         gw_status_name(status));
	return fallback;
}

bool gw_pipeline_rt_init(struct gw_pipeline_rt *rt, struct gw_pipeline *pipeline)
{
	memset(rt, 0, sizeof(*rt));
	rt->pipeline = pipeline;
	rt->name = pipeline->cfg->name;
	rt->rules = gw_folder_rules_of(pipeline->cfg);
	snprintf(rt->source_label, sizeof(rt->source_label), "source %s",
	         pipeline->source->desc.name);
	snprintf(rt->sink_label, sizeof(rt->sink_label), "sink %s", pipeline->sink->desc.name);
	rt->source_ctx = (struct gw_ctx){.pipeline = rt->name, .plugin = rt->source_label};
	rt->sink_ctx = (struct gw_ctx){.pipeline = rt->name, .plugin = rt->sink_label};
	const struct gw_host *host = gw_host_table();
	char fallback[128];
	if (pipeline->source->source.init != NULL) {
		gw_status st = pipeline->source->source.init(
		        host, &rt->source_ctx, pipeline->source_config, &rt->source_state);
		if (st != GW_OK) {
			rt->init_error = gw_xasprintf(
			        "%s: %s", rt->source_label,
			        ctx_error(&rt->source_ctx, "init", st, fallback, sizeof(fallback)));
			return false;
		}
	}
	rt->source_ready = true;
	if (pipeline->sink->sink.init != NULL) {
		gw_status st = pipeline->sink->sink.init(host, &rt->sink_ctx, pipeline->sink_config,
		                                         &rt->sink_state);
		if (st != GW_OK) {
			rt->init_error = gw_xasprintf(
			        "%s: %s", rt->sink_label,
			        ctx_error(&rt->sink_ctx, "init", st, fallback, sizeof(fallback)));
			return false;
		}
	}
	rt->sink_ready = true;
	return true;
}

void gw_pipeline_rt_fini(struct gw_pipeline_rt *rt)
{
	if (rt->sink_ready && rt->pipeline->sink->sink.fini != NULL)
		rt->pipeline->sink->sink.fini(rt->sink_state);
	if (rt->source_ready && rt->pipeline->source->source.fini != NULL)
		rt->pipeline->source->source.fini(rt->source_state);
	rt->sink_ready = rt->source_ready = false;
	free(rt->init_error);
	rt->init_error = NULL;
}

void gw_mailbox_job_init(struct gw_mailbox_job *job, struct gw_pipeline_rt *rt,
                         const struct gw_mailbox *mailbox)
{
	memset(job, 0, sizeof(*job));
	job->rt = rt;
	job->mailbox = mailbox;
	job->report.pipeline = rt->name;
	job->report.email = mailbox->email;
	job->report.max_size = rt->pipeline->cfg->max_size;
}

void gw_mailbox_job_free(struct gw_mailbox_job *job)
{
	gw_mailbox_report_free(&job->report);
}

void gw_origin_key(const char *pipeline, const char *mailbox, const char *folder,
                   uint32_t uidvalidity, uint32_t uid, char out[25])
{
	struct gw_buf input = {0};
	gw_buf_puts(&input, pipeline);
	gw_buf_append(&input, "", 1);
	gw_buf_puts(&input, mailbox);
	gw_buf_append(&input, "", 1);
	gw_buf_puts(&input, folder);
	gw_buf_append(&input, "", 1);
	gw_buf_printf(&input, "%u", uidvalidity);
	gw_buf_append(&input, "", 1);
	gw_buf_printf(&input, "%u", uid);
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	EVP_Digest(input.data, input.len, digest, &digest_len, EVP_sha256(), NULL);
	gw_buf_free(&input);
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < 12; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 15];
	}
	out[24] = '\0';
}

/* ---- per-attempt data ---- */

/* Keywords interned per mailbox: the selection stores small indexes, not strings. */
struct keyword_table {
	char **names;
	size_t count;
	uint32_t *slots; /* open addressing: index + 1, 0 = empty */
	size_t slot_count;
	bool overflow_warned;
};

struct run_folder {
	struct gw_mapped_folder *mapped;
	struct gw_folder_report *rep;
	struct gw_state_folder_key key;
	void *sink_folder;
	char sink_id[GW_SINK_ID_MAX];
	bool ensured;
	bool failed;
	uint64_t size_limit; /* min(max_size, the sink's limit for the folder); 0: none */
	uint32_t uidvalidity;
	uint32_t *failed_uids; /* failed earlier in this run, sorted */
	size_t failed_count;
	uint32_t *done_uids; /* state's done UIDs for the current uidvalidity, sorted */
	size_t done_count;
	uint64_t done_at_scan;
	uint32_t lane; /* the lane that copies it (GW_SEL_NO_LANE: nothing to copy) */
};

enum item_outcome {
	ITEM_NONE = 0, /* not yet handed to the source */
	ITEM_MARKED,   /* pending in the state, being fetched */
	ITEM_APPENDED, /* the sink has it, not yet durable */
	ITEM_FAILED,   /* message-level failure, recorded */
	ITEM_UNCERTAIN /* the sink failed mid-append: left pending for lookup */
};

struct batch_item {
	struct gw_sel_entry e; /* as scanned; e.keywords unused: see kw_offset */
	uint32_t kw_offset;    /* into batch::kw */
	uint32_t group;        /* group_batch's sort key */
	enum item_outcome outcome;
	uint64_t size;
	char *message_id;
	char origin_key[25];
	char sha256[65];
	char sink_id[GW_SINK_ID_MAX];
};

/* A batch's messages and what became of them; buffers of batch_max, allocated
 * once per attempt. */
struct batch {
	struct batch_item *items;
	size_t count;
	uint16_t *kw; /* the items' keyword indexes */
	size_t kw_len, kw_cap;
	/* Per position: what the sink says about an item after append() returned. */
	struct gw_sink_outcome *outcomes;
};

/* The state writes of a batch whose flush ended, copied out of it so that
 * the next batch can take its buffer: its done marks (strings in text) and
 * the pending rows to drop of its messages that never reached the sink.
 * Empty between a batch's settling and the transaction that writes it. */
struct deferred_commit {
	struct gw_state_record *done; /* batch_max each */
	uint32_t *done_folders;
	size_t done_count;
	uint32_t *drop_uids, *drop_folders;
	size_t drop_count;
	char *text;
	size_t text_cap;
};

struct attempt {
	struct gw_mailbox_job *job;
	struct gw_worker_res *res;
	const struct gw_pipeline_rt *rt;
	const struct gw_pipeline_cfg *cfg;
	const struct gw_source_ops *src_ops;
	const struct gw_sink_ops *snk_ops;
	struct gw_ctx sctx, kctx;
	void *src, *snk;
	struct gw_mapped_folder *mapped;
	size_t mapped_count, mapped_cap;
	struct run_folder *folders;
	size_t folder_count;
	long current;                   /* folder selected at the source, -1 if none */
	struct gw_selection *selection; /* what the scan found; see selection.h */
	struct gw_sel_cursor *cursor;   /* this lane's walk through it */
	uint32_t lane;                  /* 0: the attempt itself; see "lanes" below */
	size_t found;                   /* messages the scan found in the mailbox */
	struct keyword_table kw;
	/* A batch's message bound: the profile's batch_messages is per mailbox,
	 * shared out between its lanes and their batches in flight (batch_bound). */
	size_t batch_max;
	struct batch batch; /* the one being fetched */
	/* With a sink that flushes in the background (flush_begin): the batch
	 * before, whose flush runs while this one is fetched, committed once
	 * flush_wait returned. Empty (count 0) otherwise; a batch is held only
	 * once its flush began, so a held batch always owes a flush_wait. */
	struct batch held;
	/* The state writes of a flushed batch (commit_batch writes them at once;
	 * with a sink that flushes in the background, those of the batch whose
	 * flush ended last wait for the next batch's pending rows). */
	struct deferred_commit deferred;
	bool pending_written; /* the batch's pending rows are in the state */
	int64_t pending_us;   /* how long writing them took, for the debug log */
	/* Scratch for a batch's pending rows, fetch requests and grouping. */
	struct gw_state_record *records;
	uint32_t *uids;
	uint64_t *group_keys;
	const char *kw_scratch[256];
	char *error; /* why the attempt stopped */
};

static gw_status stop(struct attempt *a, gw_status status, const char *fmt, ...) GW_PRINTF(3, 4);

/* Record why the attempt stops (the first reason wins) and return @p status. */
static gw_status stop(struct attempt *a, gw_status status, const char *fmt, ...)
{
	if (a->error == NULL) {
		va_list ap;
		va_start(ap, fmt);
		a->error = gw_xvasprintf(fmt, ap);
		va_end(ap);
	}
	return status;
}

static gw_status stop_plugin(struct attempt *a, const struct gw_ctx *ctx, const char *label,
                             const char *operation, gw_status status)
{
	char fallback[160];
	return stop(a, status, "%s: %s", label,
	            ctx_error(ctx, operation, status, fallback, sizeof(fallback)));
}

static gw_status stop_state(struct attempt *a, char *error)
{
	gw_status st = stop(a, GW_ERR_MAILBOX, "state: %s", error != NULL ? error : "failed");
	free(error);
	return st;
}

/* The selection's errors name it already. */
static gw_status stop_selection(struct attempt *a, char *error)
{
	gw_status st = stop(a, GW_ERR_MAILBOX, "%s", error != NULL ? error : "selection failed");
	free(error);
	return st;
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return a < b ? -1 : a > b;
}

static bool has_uid(const uint32_t *uids, size_t count, uint32_t uid)
{
	return count > 0 && bsearch(&uid, uids, count, sizeof(uid), cmp_u32) != NULL;
}

/* ---- keywords ---- */

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void kw_grow(struct keyword_table *kw)
{
	size_t n = kw->slot_count ? kw->slot_count * 2 : 64;
	uint32_t *slots = gw_xcalloc(n, sizeof(*slots));
	for (size_t i = 0; i < kw->count; i++) {
		size_t s = hash_str(kw->names[i]) & (n - 1);
		while (slots[s] != 0)
			s = (s + 1) & (n - 1);
		slots[s] = (uint32_t)i + 1;
	}
	free(kw->slots);
	kw->slots = slots;
	kw->slot_count = n;
}

/* Index of @p name, added if new; -1 if the table is full (65,536 keywords). */
static long kw_intern(struct keyword_table *kw, const char *name)
{
	if (kw->count * 2 >= kw->slot_count)
		kw_grow(kw);
	size_t s = hash_str(name) & (kw->slot_count - 1);
	while (kw->slots[s] != 0) {
		if (strcmp(kw->names[kw->slots[s] - 1], name) == 0)
			return (long)kw->slots[s] - 1;
		s = (s + 1) & (kw->slot_count - 1);
	}
	if (kw->count > UINT16_MAX)
		return -1;
	kw->names = gw_xrealloc(kw->names, (kw->count + 1) * sizeof(*kw->names));
	kw->names[kw->count] = gw_xstrdup(name);
	kw->slots[s] = (uint32_t)++kw->count;
	return (long)kw->count - 1;
}

static void kw_free(struct keyword_table *kw)
{
	for (size_t i = 0; i < kw->count; i++)
		free(kw->names[i]);
	free(kw->names);
	free(kw->slots);
	memset(kw, 0, sizeof(*kw));
}

/* The message's keywords as indexes into @p out (255 at most); their count. */
static uint8_t intern_keywords(struct attempt *a, const struct gw_message_meta *meta,
                               uint16_t out[255])
{
	struct keyword_table *kw = &a->kw;
	size_t n = meta->keyword_count < 255 ? meta->keyword_count : 255;
	uint8_t count = 0;
	for (size_t i = 0; i < n; i++) {
		long idx = kw_intern(kw, meta->keywords[i]);
		if (idx >= 0)
			out[count++] = (uint16_t)idx;
	}
	if ((meta->keyword_count > 255 || count < n) && !kw->overflow_warned) {
		kw->overflow_warned = true;
		gw_mailbox_report_warn(&a->job->report,
		                       "some keywords were dropped: at most 255 per message and "
		                       "65,536 per mailbox are kept");
	}
	return count;
}

/* ---- folders ---- */

static gw_status on_folder(void *arg, const struct gw_folder_info *info)
{
	struct attempt *a = arg;
	if (info == NULL || info->name == NULL)
		return GW_OK;
	if (a->mapped_count == a->mapped_cap) {
		a->mapped_cap = a->mapped_cap ? a->mapped_cap * 2 : 32;
		a->mapped = gw_xrealloc(a->mapped, a->mapped_cap * sizeof(*a->mapped));
	}
	gw_folder_map(&a->rt->rules, info, &a->mapped[a->mapped_count++]);
	return GW_OK;
}

static void fail_folder(struct attempt *a, struct run_folder *rf, const char *reason)
{
	rf->failed = true;
	free(rf->rep->error);
	rf->rep->error = gw_xstrdup(reason);
	gw_log(&a->sctx, GW_LOG_WARN, "folder %s failed: %s", rf->mapped->source_name, reason);
}

/* Failures from earlier attempts of this run: those messages are not tried again. */
static void load_failed_uids(struct run_folder *rf)
{
	rf->failed_count = rf->rep->failure_count;
	if (rf->failed_count == 0)
		return;
	rf->failed_uids = gw_xmalloc(rf->failed_count * sizeof(*rf->failed_uids));
	for (size_t i = 0; i < rf->failed_count; i++)
		rf->failed_uids[i] = rf->rep->failures[i].uid;
	qsort(rf->failed_uids, rf->failed_count, sizeof(*rf->failed_uids), cmp_u32);
}

static gw_status list_and_map(struct attempt *a)
{
	ctx_reset(&a->sctx);
	gw_status st = a->src_ops->list_folders(a->src, on_folder, a);
	if (st != GW_OK)
		return stop_plugin(a, &a->sctx, a->rt->source_label, "listing folders", st);
	a->folders = gw_xcalloc(a->mapped_count ? a->mapped_count : 1, sizeof(*a->folders));
	for (size_t i = 0; i < a->mapped_count; i++) {
		struct gw_mapped_folder *m = &a->mapped[i];
		if (m->disposition != GW_FOLDER_MIGRATE && m->disposition != GW_FOLDER_ILLEGAL)
			continue;
		struct run_folder *rf = &a->folders[a->folder_count++];
		rf->mapped = m;
		gw_mailbox_report_folder(&a->job->report, m->source_name);
		rf->key = (struct gw_state_folder_key){.pipeline = a->rt->name,
		                                       .mailbox = a->job->mailbox->email,
		                                       .folder = m->source_name};
	}
	/* Only now: adding report folders moves them, so pointers are taken afterwards. */
	for (size_t i = 0; i < a->folder_count; i++) {
		struct run_folder *rf = &a->folders[i];
		rf->rep = gw_mailbox_report_folder(&a->job->report, rf->mapped->source_name);
		free(rf->rep->error);
		rf->rep->error = NULL;
		load_failed_uids(rf);
		if (rf->mapped->disposition == GW_FOLDER_ILLEGAL)
			fail_folder(a, rf, rf->mapped->error);
	}
	return GW_OK;
}

/* The smaller of two size limits where 0 means none. */
static uint64_t min_limit(uint64_t x, uint64_t y)
{
	if (x == 0)
		return y;
	return y == 0 || x < y ? x : y;
}

/* Ask the sink how large a message the folder takes: larger ones are skipped
 * before they are fetched, like messages over max_size. */
static void read_size_limit(struct attempt *a, struct run_folder *rf)
{
	uint64_t limit = 0;
	char set_by[GW_SINK_LIMIT_TEXT_MAX] = "";
	if (a->snk_ops->size_limit != NULL)
		limit = a->snk_ops->size_limit(a->snk, rf->sink_folder, set_by);
	set_by[sizeof(set_by) - 1] = '\0';
	gw_folder_report_set_sink_limit(rf->rep, limit, set_by[0] ? set_by : a->rt->sink_label);
	rf->size_limit = min_limit(a->cfg->max_size, limit);
}

/* A further lane's sink session opens the folders of its lane that the first
 * one made (open_lane). */
static bool opened_by_lane(const struct attempt *l, const struct run_folder *rf)
{
	return rf->lane == l->lane && rf->ensured && !rf->failed;
}

/* Name to the sink the folders ensure_folder is about to be asked for on this
 * lane's session (gw_sink_ops::prepare_folders): a remote sink prepares them
 * together, where one at a time costs round trips per folder (0.9 s for 30
 * new IMAP folders over 10 ms; bench/PROFILE.md, sixteenth pass). */
static gw_status prepare_sink_folders(struct attempt *a, bool this_lane_only)
{
	if (!GW_SINK_HAS(a->snk_ops, prepare_folders))
		return GW_OK;
	const struct gw_folder_path **paths =
	        gw_xcalloc(a->folder_count ? a->folder_count : 1, sizeof(*paths));
	size_t count = 0;
	for (size_t i = 0; i < a->folder_count; i++) {
		const struct run_folder *rf = &a->folders[i];
		if (this_lane_only ? opened_by_lane(a, rf) : !rf->failed)
			paths[count++] = &rf->mapped->path;
	}
	ctx_reset(&a->kctx);
	gw_status st = count > 0 ? a->snk_ops->prepare_folders(a->snk, paths, count) : GW_OK;
	free(paths);
	return st == GW_OK ? GW_OK
	                   : stop_plugin(a, &a->kctx, a->rt->sink_label, "preparing folders", st);
}

static gw_status ensure_folders(struct attempt *a)
{
	gw_status prepared = prepare_sink_folders(a, false);
	if (prepared != GW_OK)
		return prepared;
	const char **ids = gw_xcalloc(a->folder_count ? a->folder_count : 1, sizeof(*ids));
	for (size_t i = 0; i < a->folder_count; i++) {
		struct run_folder *rf = &a->folders[i];
		if (rf->failed)
			continue;
		a->kctx.folder = rf->mapped->source_name;
		ctx_reset(&a->kctx);
		gw_status st = a->snk_ops->ensure_folder(a->snk, &rf->mapped->path,
		                                         &rf->sink_folder, rf->sink_id);
		a->kctx.folder = NULL;
		if (st == GW_ERR_FOLDER || st == GW_ERR_MESSAGE) {
			char fallback[160];
			fail_folder(a, rf,
			            ctx_error(&a->kctx, "creating the folder in the sink", st,
			                      fallback, sizeof(fallback)));
			continue;
		}
		if (st != GW_OK) {
			free(ids);
			return stop_plugin(a, &a->kctx, a->rt->sink_label, "creating a folder", st);
		}
		rf->sink_id[GW_SINK_ID_MAX - 1] = '\0';
		rf->ensured = true;
		free(rf->rep->sink_folder);
		rf->rep->sink_folder = gw_xstrdup(rf->sink_id);
		a->kctx.folder = rf->mapped->source_name;
		read_size_limit(a, rf);
		a->kctx.folder = NULL;
		ids[i] = rf->sink_id;
	}
	struct gw_folder_collision *collisions = NULL;
	size_t n = gw_folder_collisions(ids, a->folder_count, &collisions);
	for (size_t i = 0; i < n; i++) {
		const struct run_folder *x = &a->folders[collisions[i].first];
		const struct run_folder *y = &a->folders[collisions[i].second];
		gw_mailbox_report_collision(&a->job->report, x->sink_id, x->mapped->source_name,
		                            y->mapped->source_name);
		gw_log(&a->kctx, GW_LOG_WARN,
		       "folders \"%s\" and \"%s\" both land in sink folder %s: merged",
		       x->mapped->source_name, y->mapped->source_name, x->sink_id);
	}
	free(collisions);
	free(ids);
	return GW_OK;
}

/* ---- pending rows from a run that stopped before committing ---- */

struct pending_list {
	struct gw_state_record *items;
	size_t count;
};

static char *dup_or_null(const char *s)
{
	return s != NULL ? gw_xstrdup(s) : NULL;
}

static void collect_pending(const struct gw_state_record *r, void *arg)
{
	struct pending_list *list = arg;
	list->items = gw_xrealloc(list->items, (list->count + 1) * sizeof(*list->items));
	struct gw_state_record *copy = &list->items[list->count++];
	*copy = *r;
	copy->origin_key = dup_or_null(r->origin_key);
	copy->message_id = dup_or_null(r->message_id);
	copy->sink_folder = copy->sink_id = copy->sha256_hex = NULL;
}

static void pending_list_free(struct pending_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free((char *)list->items[i].origin_key);
		free((char *)list->items[i].message_id);
	}
	free(list->items);
}

static bool drop_one_pending(struct attempt *a, struct run_folder *rf,
                             const struct gw_state_record *r, char **error)
{
	return gw_state_drop_pending(a->res->state, &rf->key, &r->uid, r->uidvalidity, 1, error);
}

/* Sink ids the state already records, in the same sink folder, for messages
 * with a given Message-ID and size, from every source folder that lands
 * there: a lookup must not hand one of them out again. */
struct recorded_ids {
	const char *sink_folder;
	char **ids;
	size_t count;
};

static void collect_recorded(const char *sink_folder, const char *sink_id, void *arg)
{
	struct recorded_ids *rec = arg;
	if (sink_folder == NULL || sink_id == NULL || strcmp(sink_folder, rec->sink_folder) != 0)
		return;
	rec->ids = gw_xrealloc(rec->ids, (rec->count + 1) * sizeof(*rec->ids));
	rec->ids[rec->count++] = gw_xstrdup(sink_id);
}

static void recorded_free(struct recorded_ids *rec)
{
	for (size_t i = 0; i < rec->count; i++)
		free(rec->ids[i]);
	free(rec->ids);
	rec->ids = NULL;
	rec->count = 0;
}

static bool load_recorded(struct attempt *a, const struct run_folder *rf, const char *message_id,
                          uint64_t size, struct recorded_ids *rec, char **error)
{
	rec->sink_folder = rf->sink_id;
	for (size_t i = 0; i < a->folder_count; i++) {
		const struct run_folder *other = &a->folders[i];
		if (!other->ensured || strcmp(other->sink_id, rf->sink_id) != 0)
			continue;
		if (!gw_state_done_sink_ids(a->res->state, &other->key, message_id, size,
		                            collect_recorded, rec, error))
			return false;
	}
	return true;
}

/* The message the worker's spool holds, as a sink sees it: its bytes, and the
 * spool's file when it has one (a sink may copy that in the kernel, so a large
 * message's pages never enter the process). */
static struct gw_message spooled_message(const struct attempt *a,
                                         const struct gw_message_meta *meta,
                                         const unsigned char *data, size_t len, const char *sha)
{
	int fd = gw_spool_file(a->res->spool);
	return (struct gw_message){.struct_size = sizeof(struct gw_message),
	                           .meta = meta,
	                           .data = data,
	                           .size = len,
	                           .sha256_hex = sha,
	                           .in_file = fd >= 0,
	                           .file_fd = fd};
}

/* ---- fetching only to read the bytes ---- */

/* Crash recovery and UIDVALIDITY re-matching fetch messages not to copy them
 * but to look at their bytes: each wanted message is spooled and hashed, then
 * handed over complete. A message that is not wanted, cannot be spooled or
 * fails at the source is simply not handed over. */
struct spooled_fetch {
	struct attempt *a;
	void *arg;
	/* Index of @p uid among the wanted messages, or -1. */
	long (*want)(void *arg, uint32_t uid);
	/* A wanted message, complete; anything but GW_OK stops the fetch. */
	gw_status (*message)(void *arg, long index, uint32_t uid, const unsigned char *data,
	                     size_t len, const char *sha256_hex);
	long current; /* index of the message being received, -1 if none */
	uint32_t current_uid;
	gw_status stop;
};

static gw_status on_spooled_begin(void *arg, uint32_t uid, uint64_t size)
{
	struct spooled_fetch *sf = arg;
	sf->current = sf->want(sf->arg, uid);
	sf->current_uid = uid;
	char *error = NULL;
	if (sf->current < 0 || !gw_spool_begin(sf->a->res->spool, size, &error)) {
		free(error);
		sf->current = -1;
		return GW_ERR_MESSAGE;
	}
	return GW_OK;
}

static gw_status on_spooled_data(void *arg, const void *bytes, size_t length)
{
	struct spooled_fetch *sf = arg;
	char *error = NULL;
	if (sf->current >= 0 && !gw_spool_write(sf->a->res->spool, bytes, length, &error)) {
		free(error);
		sf->current = -1;
	}
	return GW_OK;
}

/* The spool's room for a body being received (none for one not wanted). */
static void *spool_room(struct attempt *a, bool receiving, size_t *length)
{
	*length = 0;
	return receiving ? gw_spool_tail(a->res->spool, length) : NULL;
}

static void *on_spooled_room(void *arg, size_t *length)
{
	struct spooled_fetch *sf = arg;
	return spool_room(sf->a, sf->current >= 0, length);
}

static gw_status on_spooled_end(void *arg, uint32_t uid)
{
	struct spooled_fetch *sf = arg;
	if (sf->current < 0 || sf->current_uid != uid)
		return GW_OK;
	long index = sf->current;
	sf->current = -1;
	const unsigned char *data;
	size_t len;
	char sha[65];
	char *error = NULL;
	if (!gw_spool_finish(sf->a->res->spool, &data, &len, sha, &error)) {
		free(error);
		return GW_OK;
	}
	gw_status st = sf->message(sf->arg, index, uid, data, len, sha);
	if (st != GW_OK)
		sf->stop = st;
	return st;
}

static void on_spooled_failed(void *arg, uint32_t uid, gw_status status, const char *reason)
{
	struct spooled_fetch *sf = arg;
	sf->current = -1;
}

/* Fetch @p uids into @p sf's callbacks. Returns the callbacks' stop status,
 * or the attempt's stop for a source failure wider than one message. */
static gw_status fetch_spooled(struct attempt *a, const uint32_t *uids, size_t count,
                               struct spooled_fetch *sf)
{
	if (count == 0)
		return GW_OK;
	sf->a = a;
	sf->current = -1;
	sf->stop = GW_OK;
	struct gw_fetch_request request = {.struct_size = sizeof(request),
	                                   .uids = uids,
	                                   .count = count,
	                                   .max_size = UINT64_MAX};
	struct gw_fetch_target target = {.struct_size = sizeof(target),
	                                 .arg = sf,
	                                 .begin = on_spooled_begin,
	                                 .data = on_spooled_data,
	                                 .end = on_spooled_end,
	                                 .failed = on_spooled_failed,
	                                 .room = on_spooled_room};
	ctx_reset(&a->sctx);
	gw_status st = a->src_ops->fetch(a->src, &request, &target);
	if (sf->stop != GW_OK)
		return sf->stop;
	if (st != GW_OK && st != GW_ERR_MESSAGE)
		return stop_plugin(a, &a->sctx, a->rt->source_label, "fetch", st);
	return GW_OK;
}

/* Pending messages of the folder's current UIDVALIDITY are fetched once more
 * from the source, so the sink's lookup sees the exact bytes (and their
 * Message-ID and SHA-256) instead of guessing from size and date, and a
 * message it finds is recorded with the hash of exactly those bytes. */
struct resolve {
	struct attempt *a;
	struct run_folder *rf;
	struct gw_state_record *records;
	bool *settled;
	size_t count;
	size_t found;
};

static long resolve_want(void *arg, uint32_t uid)
{
	struct resolve *rs = arg;
	for (size_t i = 0; i < rs->count; i++) {
		if (rs->records[i].uid == uid && !rs->settled[i])
			return (long)i;
	}
	return -1; /* not looked up: dropped below and copied again */
}

/* Ask the sink about one pending message whose bytes are at hand: found, it
 * is recorded done; not found, its pending row goes and it is copied again. */
static gw_status lookup_fetched(struct resolve *rs, struct gw_state_record *r,
                                const unsigned char *data, size_t len, const char *sha)
{
	struct attempt *a = rs->a;
	struct run_folder *rf = rs->rf;
	char *message_id = gw_message_id_of(data, len);
	struct recorded_ids rec = {0};
	char *error = NULL;
	if (!load_recorded(a, rf, message_id, len, &rec, &error)) {
		free(message_id);
		recorded_free(&rec);
		return stop_state(a, error);
	}
	struct gw_message_meta meta = {.struct_size = sizeof(meta),
	                               .uid = r->uid,
	                               .size = len,
	                               .internal_date = r->internal_date,
	                               .message_id = message_id};
	struct gw_message message = spooled_message(a, &meta, data, len, sha);
	char key[25];
	if (r->origin_key == NULL) /* a row written before origin keys were recorded */
		gw_origin_key(a->rt->name, a->job->mailbox->email, rf->mapped->source_name,
		              r->uidvalidity, r->uid, key);
	struct gw_sink_item item = {.struct_size = sizeof(item),
	                            .message = &message,
	                            .origin_key = r->origin_key != NULL ? r->origin_key : key,
	                            .recorded_ids = (const char *const *)rec.ids,
	                            .recorded_count = rec.count};
	bool found = false;
	char sink_id[GW_SINK_ID_MAX] = "";
	a->kctx.folder = rf->mapped->source_name;
	ctx_reset(&a->kctx);
	gw_status st = a->snk_ops->lookup(a->snk, rf->sink_folder, &item, &found, sink_id);
	a->kctx.folder = NULL;
	recorded_free(&rec);
	sink_id[GW_SINK_ID_MAX - 1] = '\0';
	if (st != GW_OK && st != GW_ERR_MESSAGE) {
		free(message_id);
		return stop_plugin(a, &a->kctx, a->rt->sink_label, "looking up a message", st);
	}
	bool ok;
	if (st == GW_OK && found) {
		struct gw_state_record done = *r;
		done.sink_folder = rf->sink_id;
		done.sink_id = sink_id;
		done.size = len;
		done.sha256_hex = sha;
		done.message_id = message_id;
		ok = gw_state_mark_done(a->res->state, &rf->key, &done, 1, &error);
		rs->found += ok;
	} else {
		ok = drop_one_pending(a, rf, r, &error);
	}
	free(message_id);
	return ok ? GW_OK : stop_state(a, error);
}

static gw_status resolve_message(void *arg, long index, uint32_t uid, const unsigned char *data,
                                 size_t len, const char *sha256_hex)
{
	struct resolve *rs = arg;
	rs->settled[index] = true;
	return lookup_fetched(rs, &rs->records[index], data, len, sha256_hex);
}

static gw_status fetch_and_look_up(struct attempt *a, struct resolve *rs)
{
	uint32_t *uids = gw_xcalloc(rs->count, sizeof(*uids));
	for (size_t i = 0; i < rs->count; i++)
		uids[i] = rs->records[i].uid;
	struct spooled_fetch sf = {.arg = rs, .want = resolve_want, .message = resolve_message};
	gw_status st = fetch_spooled(a, uids, rs->count, &sf);
	free(uids);
	if (st != GW_OK)
		return st;
	/* Unsettled: gone from the source since, so there is nothing to compare
	 * against, and nothing that a later run would copy again either. */
	char *error = NULL;
	for (size_t i = 0; i < rs->count; i++) {
		if (!rs->settled[i] && !drop_one_pending(a, rs->rf, &rs->records[i], &error))
			return stop_state(a, error);
	}
	return GW_OK;
}

/* Rows of an earlier UIDVALIDITY name UIDs the source no longer has, so their
 * bytes cannot be fetched for a lookup: they are copied again. */
static gw_status drop_stale_pending(struct attempt *a, struct run_folder *rf,
                                    const struct pending_list *list, uint32_t uidvalidity)
{
	size_t stale = 0;
	char *error = NULL;
	for (size_t i = 0; i < list->count; i++) {
		if (list->items[i].uidvalidity == uidvalidity)
			continue;
		if (!drop_one_pending(a, rf, &list->items[i], &error))
			return stop_state(a, error);
		stale++;
	}
	if (stale > 0)
		gw_mailbox_report_warn(
		        &a->job->report,
		        "folder \"%s\": %zu message(s) were being copied when an "
		        "earlier run stopped and the folder's UIDVALIDITY has changed "
		        "since; they are copied again and may be duplicated",
		        rf->mapped->source_name, stale);
	return GW_OK;
}

static gw_status drop_all_pending(struct attempt *a, struct run_folder *rf,
                                  const struct pending_list *list)
{
	char *error = NULL;
	for (size_t i = 0; i < list->count; i++) {
		if (!drop_one_pending(a, rf, &list->items[i], &error))
			return stop_state(a, error);
	}
	gw_mailbox_report_warn(
	        &a->job->report,
	        "folder \"%s\": %zu message(s) were being copied when an earlier run stopped; the "
	        "sink cannot look them up, so they are copied again and may be duplicated",
	        rf->mapped->source_name, list->count);
	return GW_OK;
}

/* Pending rows are messages an earlier run (or attempt) handed to the sink
 * without committing. Runs with the folder selected at the source. */
static gw_status resolve_pending(struct attempt *a, struct run_folder *rf, uint32_t uidvalidity)
{
	struct pending_list list = {0};
	char *error = NULL;
	if (!gw_state_pending(a->res->state, &rf->key, collect_pending, &list, &error))
		return stop_state(a, error);
	if (list.count == 0)
		return GW_OK;
	gw_status st = GW_OK;
	if (a->snk_ops->lookup == NULL) {
		st = drop_all_pending(a, rf, &list);
		pending_list_free(&list);
		return st;
	}
	struct resolve rs = {.a = a, .rf = rf};
	rs.records = gw_xcalloc(list.count, sizeof(*rs.records));
	rs.settled = gw_xcalloc(list.count, sizeof(*rs.settled));
	for (size_t i = 0; i < list.count; i++) {
		if (list.items[i].uidvalidity == uidvalidity)
			rs.records[rs.count++] = list.items[i];
	}
	st = drop_stale_pending(a, rf, &list, uidvalidity);
	if (st == GW_OK && rs.count > 0)
		st = fetch_and_look_up(a, &rs);
	if (st == GW_OK)
		gw_log(&a->sctx, GW_LOG_INFO,
		       "%zu message(s) in flight when an earlier run stopped: %zu found in the "
		       "sink, %zu to copy again",
		       list.count, rs.found, list.count - rs.found);
	free(rs.records);
	free(rs.settled);
	pending_list_free(&list);
	return st;
}

/* ---- scanning ---- */

struct scan_ctx {
	struct attempt *a;
	struct run_folder *rf;
	uint32_t folder_index;
	uint32_t recorded;        /* the state's UIDVALIDITY of the folder, 0 if none */
	uint32_t old_uidvalidity; /* != 0: UIDVALIDITY changed, re-matched after the scan */
	bool open;                /* its scan into the selection has begun */
	bool scanned;             /* and ended, kept */
	size_t found;
	char *error;
};

static gw_status on_meta(void *arg, const struct gw_message_meta *meta)
{
	struct scan_ctx *sc = arg;
	struct attempt *a = sc->a;
	if (meta == NULL || meta->uid == 0 || sc->error != NULL)
		return GW_OK;
	uint16_t keywords[255];
	struct gw_sel_entry e = {
	        .internal_date = meta->internal_date,
	        .size = meta->size,
	        .uid = meta->uid,
	        .folder = sc->folder_index,
	        .tz_offset_min = (int16_t)meta->tz_offset_min,
	        .flags = (uint8_t)meta->flags,
	        .state = GW_SEL_TODO,
	        .keyword_count = intern_keywords(a, meta, keywords),
	        .keywords = keywords,
	};
	if (has_uid(sc->rf->done_uids, sc->rf->done_count, meta->uid))
		e.state = GW_SEL_DONE;
	else if (has_uid(sc->rf->failed_uids, sc->rf->failed_count, meta->uid))
		e.state = GW_SEL_FAILED_BEFORE;
	bool added = false;
	if (!gw_selection_add(a->selection, &e, &added, &sc->error))
		return GW_ERR_MAILBOX;
	sc->found += added;
	if (added && e.state == GW_SEL_DONE)
		sc->rf->done_at_scan++;
	return GW_OK;
}

static gw_status select_at_source(struct attempt *a, size_t index, struct gw_folder_status *status)
{
	struct run_folder *rf = &a->folders[index];
	memset(status, 0, sizeof(*status));
	status->struct_size = sizeof(*status);
	a->sctx.folder = rf->mapped->source_name;
	ctx_reset(&a->sctx);
	a->current = -1;
	gw_status st = a->src_ops->select_folder(a->src, rf->mapped->source_name, status);
	if (st == GW_OK)
		a->current = (long)index;
	return st;
}

/* Folder-level problems fail the folder and let the mailbox go on; the rest stop it. */
static gw_status folder_or_stop(struct attempt *a, struct run_folder *rf, const char *operation,
                                gw_status st)
{
	if (st == GW_ERR_FOLDER || st == GW_ERR_MESSAGE) {
		char fallback[160];
		fail_folder(a, rf, ctx_error(&a->sctx, operation, st, fallback, sizeof(fallback)));
		return GW_OK;
	}
	return stop_plugin(a, &a->sctx, a->rt->source_label, operation, st);
}

static gw_status load_uidvalidity(struct attempt *a, struct run_folder *rf, uint32_t uidvalidity,
                                  uint32_t *recorded)
{
	char *error = NULL;
	if (!gw_state_folder_uidvalidity(a->res->state, &rf->key, recorded, &error))
		return stop_state(a, error);
	free(rf->done_uids);
	rf->done_uids = NULL;
	rf->done_count = 0;
	if (!gw_state_done_uids(a->res->state, &rf->key, uidvalidity, &rf->done_uids,
	                        &rf->done_count, &error))
		return stop_state(a, error);
	return GW_OK;
}

/* ---- re-matching after a UIDVALIDITY change ---- */

/* A new UIDVALIDITY makes every recorded UID of the folder meaningless. Before
 * anything is copied again, each message not yet matched is fetched once and
 * looked for among the folder's done rows by SHA-256, size and Message-ID
 * (messages without one match by hash alone): only what is really new is
 * copied. Rare and costly (one download of the folder), never a guess. */
struct rematch {
	struct attempt *a;
	struct run_folder *rf;
	uint32_t folder_index;
	uint32_t *uids; /* candidates, ascending */
	size_t count;
	uint64_t matched;
	char *error;     /* the state's */
	char *sel_error; /* the selection's */
};

static long rematch_want(void *arg, uint32_t uid)
{
	struct rematch *rm = arg;
	const uint32_t *hit = bsearch(&uid, rm->uids, rm->count, sizeof(*rm->uids), cmp_u32);
	return hit ? hit - rm->uids : -1; /* not matched: copied like any new message */
}

static gw_status rematch_message(void *arg, long index, uint32_t uid, const unsigned char *data,
                                 size_t len, const char *sha256_hex)
{
	struct rematch *rm = arg;
	(void)index;
	char *message_id = gw_message_id_of(data, len);
	struct gw_state_moved moved;
	bool found = false;
	struct gw_state *state = rm->a->res->state;
	const struct gw_state_folder_key *key = &rm->rf->key;
	bool ok = gw_state_find_moved(state, key, rm->rf->uidvalidity, message_id, len, sha256_hex,
	                              &found, &moved, &rm->error) &&
	          (!found || gw_state_rekey(state, key, moved.uidvalidity, moved.uid,
	                                    rm->rf->uidvalidity, uid, &rm->error));
	free(message_id);
	if (!ok || (found && !gw_selection_set_state(rm->a->selection, rm->folder_index, uid,
	                                             GW_SEL_DONE, &rm->sel_error)))
		return GW_ERR_MAILBOX;
	if (found) {
		rm->rf->done_at_scan++;
		rm->matched++;
	}
	return GW_OK;
}

static gw_status rematch_folder(struct attempt *a, uint32_t index, uint64_t *matched)
{
	struct rematch rm = {.a = a, .rf = &a->folders[index], .folder_index = index};
	char *error = NULL;
	if (!gw_selection_todo_uids(a->selection, index, &rm.uids, &rm.count, &error))
		return stop_selection(a, error);
	struct spooled_fetch sf = {.arg = &rm, .want = rematch_want, .message = rematch_message};
	gw_status st = fetch_spooled(a, rm.uids, rm.count, &sf);
	free(rm.uids);
	*matched = rm.matched;
	if (rm.sel_error != NULL)
		return stop_selection(a, rm.sel_error);
	return rm.error != NULL ? stop_state(a, rm.error) : st;
}

/* The folder's selection status is known: its recorded state is loaded and
 * its scan into the selection begins. */
static gw_status scan_open(struct attempt *a, struct scan_ctx *sc, uint32_t uidvalidity)
{
	struct run_folder *rf = sc->rf;
	rf->uidvalidity = uidvalidity;
	gw_status st = load_uidvalidity(a, rf, uidvalidity, &sc->recorded);
	if (st != GW_OK)
		return st;
	if (sc->recorded != 0 && sc->recorded != uidvalidity)
		sc->old_uidvalidity = sc->recorded;
	gw_folder_report_reset_scan(rf->rep);
	rf->done_at_scan = 0;
	char *error = NULL;
	if (!gw_selection_scan_begin(a->selection, &error))
		return stop_selection(a, error);
	sc->open = true;
	return GW_OK;
}

/* The source's scan of an open folder ended with @p st (@p reason, if given,
 * says why it failed): all of it goes into the selection, or nothing. */
static gw_status scan_close(struct attempt *a, struct scan_ctx *sc, gw_status st,
                            const char *reason)
{
	struct run_folder *rf = sc->rf;
	sc->open = false;
	bool keep = st == GW_OK && sc->error == NULL;
	char *error = NULL;
	if (!gw_selection_scan_end(a->selection, keep, &error) && sc->error == NULL)
		sc->error = error;
	else
		free(error);
	/* Only this folder's scan needs the done UIDs. */
	free(rf->done_uids);
	rf->done_uids = NULL;
	rf->done_count = 0;
	if (sc->error != NULL) {
		char *e = sc->error;
		sc->error = NULL;
		return stop_selection(a, e);
	}
	if (st != GW_OK) {
		rf->done_at_scan = 0;
		if (reason != NULL && (st == GW_ERR_FOLDER || st == GW_ERR_MESSAGE)) {
			fail_folder(a, rf, reason);
			return GW_OK;
		}
		return folder_or_stop(a, rf, "scanning the folder", st);
	}
	rf->rep->found = sc->found;
	a->found += sc->found;
	sc->scanned = true;
	return GW_OK;
}

/* After a folder's scan: re-match it if its UIDVALIDITY changed, and record the new one. */
static gw_status scan_settle(struct attempt *a, struct scan_ctx *sc)
{
	struct run_folder *rf = sc->rf;
	uint64_t rematched = 0;
	gw_status st;
	if (sc->old_uidvalidity != 0 &&
	    (st = rematch_folder(a, sc->folder_index, &rematched)) != GW_OK)
		return st;
	rf->rep->rematched = rematched;
	char *error = NULL;
	if (sc->recorded != rf->uidvalidity &&
	    !gw_state_set_folder_uidvalidity(a->res->state, &rf->key, rf->uidvalidity, &error))
		return stop_state(a, error);
	if (sc->old_uidvalidity != 0) {
		gw_mailbox_report_warn(
		        &a->job->report,
		        "folder \"%s\": UIDVALIDITY changed from %u to %u; %llu "
		        "message(s) re-matched by SHA-256, size and Message-ID, the others are "
		        "copied as new",
		        rf->mapped->source_name, sc->old_uidvalidity, rf->uidvalidity,
		        (unsigned long long)rematched);
	}
	return GW_OK;
}

/* One folder, waiting for each answer: select, settle what an earlier run
 * left pending, scan, settle. */
static gw_status scan_folder(struct attempt *a, size_t index)
{
	struct run_folder *rf = &a->folders[index];
	struct gw_folder_status status;
	gw_status st = select_at_source(a, index, &status);
	if (st != GW_OK)
		return folder_or_stop(a, rf, "selecting the folder", st);
	rf->uidvalidity = status.uidvalidity;
	if ((st = resolve_pending(a, rf, status.uidvalidity)) != GW_OK)
		return st;
	struct scan_ctx sc = {.a = a, .rf = rf, .folder_index = (uint32_t)index};
	if ((st = scan_open(a, &sc, status.uidvalidity)) != GW_OK)
		return st;
	struct gw_scan_request request = {.struct_size = sizeof(request), .uid_min = 1};
	st = scan_close(a, &sc, a->src_ops->scan(a->src, &request, on_meta, &sc), NULL);
	if (st != GW_OK || !sc.scanned)
		return st;
	return scan_settle(a, &sc);
}

static void count_pending(const struct gw_state_record *r, void *arg)
{
	(void)r;
	++*(size_t *)arg;
}

/* Messages an earlier run left in flight: settled before the folder is scanned. */
static gw_status has_pending(struct attempt *a, struct run_folder *rf, bool *pending)
{
	size_t count = 0;
	char *error = NULL;
	if (!gw_state_pending(a->res->state, &rf->key, count_pending, &count, &error))
		return stop_state(a, error);
	*pending = count > 0;
	return GW_OK;
}

struct scan_many {
	struct attempt *a;
	struct scan_ctx *folders; /* per request */
	size_t current;           /* the request being answered */
	gw_status stop;
};

static gw_status on_scan_folder_begin(void *arg, size_t index,
                                      const struct gw_folder_status *status)
{
	struct scan_many *m = arg;
	m->current = index;
	struct scan_ctx *sc = &m->folders[index];
	m->a->sctx.folder = sc->rf->mapped->source_name;
	gw_status st = scan_open(m->a, sc, status->uidvalidity);
	if (st != GW_OK && m->stop == GW_OK)
		m->stop = st;
	return st;
}

static gw_status on_scan_folder_meta(void *arg, const struct gw_message_meta *meta)
{
	struct scan_many *m = arg;
	return on_meta(&m->folders[m->current], meta);
}

static void on_scan_folder_end(void *arg, size_t index, gw_status status, const char *reason)
{
	struct scan_many *m = arg;
	struct scan_ctx *sc = &m->folders[index];
	gw_status st = GW_OK;
	if (sc->open)
		st = scan_close(m->a, sc, status, reason);
	else if (status != GW_OK)
		fail_folder(m->a, sc->rf, reason != NULL ? reason : gw_status_name(status));
	if (st != GW_OK && m->stop == GW_OK)
		m->stop = st;
}

/* The folders without anything pending, in one call (gw_source_ops::scan_folders):
 * the source sends each folder's selection and scan without waiting for the
 * folder before. *@p done[i] is set for each folder this took care of. */
static gw_status scan_folders_in_one(struct attempt *a, bool *done)
{
	struct gw_scan_request *requests = gw_xcalloc(a->folder_count + 1, sizeof(*requests));
	struct scan_many m = {.a = a,
	                      .folders = gw_xcalloc(a->folder_count + 1, sizeof(*m.folders))};
	size_t count = 0;
	gw_status st = GW_OK;
	for (size_t i = 0; i < a->folder_count && st == GW_OK; i++) {
		struct run_folder *rf = &a->folders[i];
		bool pending = false;
		if (rf->failed || !rf->ensured || (st = has_pending(a, rf, &pending)) != GW_OK ||
		    pending)
			continue;
		requests[count] = (struct gw_scan_request){.struct_size = sizeof(*requests),
		                                           .uid_min = 1,
		                                           .folder = rf->mapped->source_name};
		m.folders[count++] =
		        (struct scan_ctx){.a = a, .rf = rf, .folder_index = (uint32_t)i};
		done[i] = true;
	}
	struct gw_scan_target target = {.struct_size = sizeof(target),
	                                .arg = &m,
	                                .folder_begin = on_scan_folder_begin,
	                                .meta = on_scan_folder_meta,
	                                .folder_end = on_scan_folder_end};
	if (st == GW_OK && count > 0) {
		ctx_reset(&a->sctx);
		st = a->src_ops->scan_folders(a->src, requests, count, &target);
		a->current = -1; /* whichever folder the source has open now */
		if (m.stop != GW_OK)
			st = m.stop;
		else if (st != GW_OK)
			st = stop_plugin(a, &a->sctx, a->rt->source_label, "scan", st);
	}
	for (size_t k = 0; k < count; k++) {
		struct scan_ctx *sc = &m.folders[k];
		if (sc->open) /* the scan stopped inside it: none of it is kept */
			scan_close(a, sc, GW_ERR_SESSION, NULL);
		if (st == GW_OK && sc->scanned)
			st = scan_settle(a, sc);
	}
	free(m.folders);
	free(requests);
	return st;
}

static gw_status scan_folders(struct attempt *a)
{
	char *error = NULL;
	if (!gw_selection_open(&a->selection, &error))
		return stop_selection(a, error);
	bool *done = gw_xcalloc(a->folder_count + 1, sizeof(*done));
	gw_status st = GW_OK;
	if (GW_SOURCE_HAS(a->src_ops, scan_folders))
		st = scan_folders_in_one(a, done);
	for (size_t i = 0; i < a->folder_count && st == GW_OK; i++) {
		if (gw_cancel_level() >= 1) {
			st = stop(a, GW_ERR_CANCELLED, "interrupted");
			break;
		}
		struct run_folder *rf = &a->folders[i];
		if (!done[i] && !rf->failed && rf->ensured)
			st = scan_folder(a, i);
	}
	free(done);
	a->sctx.folder = NULL;
	return st;
}

/* ---- selection: caps and order ---- */

static void on_skipped(void *arg, uint32_t folder, uint32_t uid, enum gw_sel_state state,
                       uint64_t value)
{
	struct attempt *a = arg;
	struct gw_folder_report *rep = a->folders[folder].rep;
	if (state == GW_SEL_TOO_LARGE)
		gw_folder_report_skip(rep, uid, GW_SKIP_TOO_LARGE, value);
	else if (state == GW_SEL_FILTERED)
		gw_folder_report_skip(rep, uid, GW_SKIP_FILTERED, value);
	else
		gw_folder_report_skip(rep, uid, GW_SKIP_OVER_CAP, 0);
}

static gw_status select_messages(struct attempt *a, uint64_t *todo)
{
	uint64_t *size_limits = gw_xcalloc(a->folder_count + 1, sizeof(*size_limits));
	for (size_t i = 0; i < a->folder_count; i++)
		size_limits[i] = a->folders[i].size_limit;
	struct gw_selection_rules rules = {.size_limits = size_limits,
	                                   .folder_count = a->folder_count,
	                                   .since = a->cfg->since,
	                                   .max_count = a->cfg->max_count,
	                                   .skipped = on_skipped,
	                                   .arg = a};
	char *error = NULL;
	bool ok = gw_selection_apply(a->selection, &rules, todo, &error);
	free(size_limits);
	return ok ? GW_OK : stop_selection(a, error);
}

/* Done at scan time minus what earlier attempts of this run copied themselves. */
static void update_already_present(struct attempt *a)
{
	for (size_t i = 0; i < a->folder_count; i++) {
		struct run_folder *rf = &a->folders[i];
		uint64_t migrated = rf->rep->migrated;
		rf->rep->already_present =
		        rf->done_at_scan > migrated ? rf->done_at_scan - migrated : 0;
	}
}

/* ---- copying ---- */

static struct run_folder *item_folder(struct attempt *a, const struct batch_item *item)
{
	return &a->folders[item->e.folder];
}

/* One message of this job's share of the progress total is done with (copied or failed). */
static void settle_one(struct attempt *a)
{
	uint64_t left = atomic_load(&a->job->outstanding);
	while (left > 0 && !atomic_compare_exchange_weak(&a->job->outstanding, &left, left - 1)) {
	}
	if (left > 0)
		atomic_fetch_sub(&a->res->progress->planned, 1);
}

static void fail_item(struct attempt *a, struct batch_item *item, const char *reason)
{
	const struct gw_sel_entry *e = &item->e;
	item->outcome = ITEM_FAILED;
	free(item->message_id);
	item->message_id = NULL;
	gw_folder_report_fail(a->folders[e->folder].rep, e->uid, reason);
	atomic_fetch_add(&a->res->progress->failed, 1);
	settle_one(a);
	/* The text names the folder: a refusal read late (a pipelined APPEND) would
	 * otherwise carry whichever folder the context held then. */
	const char *context_folder = a->sctx.folder;
	a->sctx.folder = NULL;
	gw_log(&a->sctx, GW_LOG_WARN, "folder %s uid %u: %s",
	       a->folders[e->folder].mapped->source_name, e->uid, reason);
	a->sctx.folder = context_folder;
}

static size_t group_end(struct attempt *a, size_t first)
{
	uint32_t folder = a->batch.items[first].e.folder;
	size_t end = first + 1;
	while (end < a->batch.count && a->batch.items[end].e.folder == folder)
		end++;
	return end;
}

struct fetch_ctx {
	struct attempt *a;
	size_t first, end;          /* the group: batch[first, end) */
	const size_t *group_firsts; /* fetch_folders: where request i's group starts */
	size_t group_count;
	size_t expected; /* where the next message should be: sources deliver in request order */
	long current;    /* batch index of the message being received, -1 if none */
	gw_status stop;  /* a sink failure that stops the batch */
	uint32_t stopped_uid; /* the UID a connection-wide failure interrupted, 0 if none */
};

static long find_item(struct fetch_ctx *fc, uint32_t uid)
{
	if (fc->expected < fc->end) {
		struct batch_item *item = &fc->a->batch.items[fc->expected];
		if (item->outcome == ITEM_MARKED && item->e.uid == uid)
			return (long)fc->expected++;
	}
	for (size_t i = fc->first; i < fc->end; i++) {
		struct batch_item *item = &fc->a->batch.items[i];
		if (item->outcome == ITEM_MARKED && item->e.uid == uid)
			return (long)i;
	}
	return -1;
}

static gw_status write_batch_pending(struct attempt *a);

static gw_status on_fetch_begin(void *arg, uint32_t uid, uint64_t size)
{
	struct fetch_ctx *fc = arg;
	if (gw_cancel_level() >= 2)
		return GW_ERR_CANCELLED;
	/* Before anything of the batch can reach the sink. */
	if (!fc->a->pending_written) {
		gw_status st = write_batch_pending(fc->a);
		if (st != GW_OK) {
			if (fc->stop == GW_OK)
				fc->stop = st;
			return st;
		}
	}
	fc->current = find_item(fc, uid);
	if (fc->current < 0)
		return GW_ERR_MESSAGE; /* not asked for: let the source skip it */
	char *error = NULL;
	if (!gw_spool_begin(fc->a->res->spool, size, &error)) {
		fail_item(fc->a, &fc->a->batch.items[fc->current],
		          error != NULL ? error : "spool failed");
		free(error);
		fc->current = -1;
		return GW_ERR_MESSAGE;
	}
	return GW_OK;
}

static gw_status on_fetch_data(void *arg, const void *bytes, size_t length)
{
	struct fetch_ctx *fc = arg;
	if (fc->current < 0)
		return GW_OK;
	char *error = NULL;
	if (!gw_spool_write(fc->a->res->spool, bytes, length, &error)) {
		fail_item(fc->a, &fc->a->batch.items[fc->current],
		          error != NULL ? error : "spool failed");
		free(error);
		fc->current = -1;
	}
	return GW_OK;
}

static void *on_fetch_room(void *arg, size_t *length)
{
	struct fetch_ctx *fc = arg;
	return spool_room(fc->a, fc->current >= 0, length);
}

static gw_status append_item(struct fetch_ctx *fc, struct batch_item *item,
                             const unsigned char *data, size_t len)
{
	struct attempt *a = fc->a;
	const struct gw_sel_entry *e = &item->e;
	struct run_folder *rf = item_folder(a, item);
	for (size_t i = 0; i < e->keyword_count; i++)
		a->kw_scratch[i] = a->kw.names[a->batch.kw[item->kw_offset + i]];
	item->message_id = gw_spool_message_id(a->res->spool);
	struct gw_message_meta meta = {
	        .struct_size = sizeof(meta),
	        .uid = e->uid,
	        .size = len,
	        .internal_date = e->internal_date,
	        .tz_offset_min = e->tz_offset_min,
	        .flags = e->flags,
	        .keyword_count = e->keyword_count,
	        .keywords = a->kw_scratch,
	        .message_id = item->message_id,
	};
	struct gw_message message = spooled_message(a, &meta, data, len, item->sha256);
	struct gw_sink_outcome *outcome = &a->batch.outcomes[item - a->batch.items];
	*outcome = (struct gw_sink_outcome){.struct_size = sizeof(*outcome), .status = GW_OK};
	struct gw_sink_item sink_item = {.struct_size = sizeof(sink_item),
	                                 .message = &message,
	                                 .origin_key = item->origin_key,
	                                 .outcome = outcome};
	a->kctx.folder = rf->mapped->source_name;
	ctx_reset(&a->kctx);
	gw_status st = a->snk_ops->append(a->snk, rf->sink_folder, &sink_item, item->sink_id);
	a->kctx.folder = NULL;
	item->sink_id[GW_SINK_ID_MAX - 1] = '\0';
	if (st == GW_OK) {
		item->outcome = ITEM_APPENDED;
		item->size = len;
		return GW_OK;
	}
	char fallback[160];
	const char *text = ctx_error(&a->kctx, "append", st, fallback, sizeof(fallback));
	if (st == GW_ERR_MESSAGE) {
		char *reason = gw_xasprintf("%s: %s", a->rt->sink_label, text);
		fail_item(a, item, reason);
		free(reason);
		return GW_OK;
	}
	/* The sink may or may not hold it: it stays pending and lookup decides later. */
	item->outcome = ITEM_UNCERTAIN;
	fc->stop = stop_plugin(a, &a->kctx, a->rt->sink_label, "append", st);
	return st;
}

static gw_status on_fetch_end(void *arg, uint32_t uid)
{
	struct fetch_ctx *fc = arg;
	if (fc->current < 0)
		return GW_OK;
	struct batch_item *item = &fc->a->batch.items[fc->current];
	fc->current = -1;
	if (item->e.uid != uid)
		return GW_OK;
	const unsigned char *data = NULL;
	size_t len = 0;
	char *error = NULL;
	if (!gw_spool_finish(fc->a->res->spool, &data, &len, item->sha256, &error)) {
		fail_item(fc->a, item, error != NULL ? error : "spool failed");
		free(error);
		return GW_OK;
	}
	if (gw_cancel_level() >= 2)
		return GW_ERR_CANCELLED;
	gw_status st = append_item(fc, item, data, len);
	if (st != GW_OK)
		return st;
	/* A graceful stop finishes the message in flight, then stops the fetch. */
	return gw_cancel_level() >= 1 ? GW_ERR_CANCELLED : GW_OK;
}

static void give_up_group(struct fetch_ctx *fc, const char *reason);

static void on_fetch_failed(void *arg, uint32_t uid, gw_status status, const char *reason)
{
	struct fetch_ctx *fc = arg;
	if (uid == 0) { /* fetch_folders: about this request's folder */
		if (status == GW_ERR_FOLDER) {
			give_up_group(fc, reason); /* it will not open */
		} else if (fc->stop == GW_OK) {
			const char *folder = item_folder(fc->a, &fc->a->batch.items[fc->first])
			                             ->mapped->source_name;
			fc->stop = stop(fc->a, status, "folder \"%s\": %s", folder, reason);
		}
		return;
	}
	/* Connection-wide trouble is not this message's fault: the fetch returns it and
	 * the message is tried again after the reconnect. */
	if (status == GW_ERR_SESSION || status == GW_ERR_THROTTLED || status == GW_ERR_CANCELLED ||
	    status == GW_ERR_AUTH || status == GW_ERR_MAILBOX) {
		fc->stopped_uid = uid;
		return;
	}
	long idx = fc->current >= 0 && fc->a->batch.items[fc->current].e.uid == uid
	                   ? fc->current
	                   : find_item(fc, uid);
	if (idx == fc->current)
		fc->current = -1;
	if (idx < 0)
		return;
	char *text = gw_xasprintf("%s: %s", fc->a->rt->source_label,
	                          reason != NULL && reason[0] != '\0' ? reason : "fetch failed");
	fail_item(fc->a, &fc->a->batch.items[idx], text);
	free(text);
}

/* The pending rows of the group's messages still to come, in the batch's
 * transaction. */
static gw_status write_group_pending(struct attempt *a, struct run_folder *rf, size_t first,
                                     size_t end)
{
	struct gw_state_record *records = a->records;
	size_t n = 0;
	for (size_t i = first; i < end; i++) {
		const struct batch_item *item = &a->batch.items[i];
		if (item->outcome != ITEM_MARKED)
			continue;
		records[n++] = (struct gw_state_record){
		        .uidvalidity = rf->uidvalidity,
		        .uid = item->e.uid,
		        .origin_key = item->origin_key,
		        .size = item->e.size,
		        .internal_date = item->e.internal_date,
		};
	}
	char *error = NULL;
	if (n > 0 && !gw_state_mark_pending(a->res->state, &rf->key, records, n, &error))
		return stop_state(a, error);
	return GW_OK;
}

struct give_up {
	struct attempt *a;
	struct run_folder *rf;
	char *text;
};

static void give_up_entry(void *arg, const struct gw_sel_entry *e)
{
	struct give_up *g = arg;
	gw_folder_report_fail(g->rf->rep, e->uid, g->text);
	atomic_fetch_add(&g->a->res->progress->failed, 1);
	settle_one(g->a);
}

/* Every message of a failed folder that is still to do is recorded, never
 * dropped silently: those the copy's cursor has not reached yet here, the
 * batch's own members by the batch. */
static gw_status give_up_folder(struct attempt *a, struct run_folder *rf, const char *reason)
{
	fail_folder(a, rf, reason);
	struct give_up g = {.a = a, .rf = rf, .text = gw_xasprintf("folder failed: %s", reason)};
	char *error = NULL;
	bool ok = gw_sel_cursor_each_ahead(a->cursor, (uint32_t)(rf - a->folders), give_up_entry,
	                                   &g, &error);
	free(g.text);
	return ok ? GW_OK : stop_selection(a, error);
}

/* The group's folder failed: it, and its messages in this batch, are recorded. */
static void give_up_group(struct fetch_ctx *fc, const char *reason)
{
	struct attempt *a = fc->a;
	struct run_folder *rf = item_folder(a, &a->batch.items[fc->first]);
	a->current = -1;
	gw_status st = give_up_folder(a, rf, reason);
	if (st != GW_OK && fc->stop == GW_OK)
		fc->stop = st;
	for (size_t i = fc->first; i < fc->end; i++) {
		enum item_outcome o = a->batch.items[i].outcome;
		if (o == ITEM_MARKED || o == ITEM_NONE)
			fail_item(a, &a->batch.items[i], rf->rep->error);
	}
}

/* fetch_folders: the messages of request @p index come next. */
static void on_fetch_request(void *arg, size_t index)
{
	struct fetch_ctx *fc = arg;
	if (index >= fc->group_count)
		return;
	fc->first = fc->expected = fc->group_firsts[index];
	fc->end = group_end(fc->a, fc->first);
	fc->current = -1;
	fc->a->sctx.folder =
	        item_folder(fc->a, &fc->a->batch.items[fc->first])->mapped->source_name;
}

/* Where a fetch of batch messages delivers: the spool, then the sink. */
static struct gw_fetch_target copy_target(struct fetch_ctx *fc)
{
	return (struct gw_fetch_target){.struct_size = sizeof(struct gw_fetch_target),
	                                .arg = fc,
	                                .begin = on_fetch_begin,
	                                .data = on_fetch_data,
	                                .end = on_fetch_end,
	                                .failed = on_fetch_failed,
	                                .request = on_fetch_request,
	                                .room = on_fetch_room};
}

/* The message a fetch stopped at: the one being received, else the next one due. */
static uint32_t stopped_at(const struct fetch_ctx *fc)
{
	if (fc->stopped_uid)
		return fc->stopped_uid;
	long at = fc->current >= 0 ? fc->current : fc->expected < fc->end ? (long)fc->expected : -1;
	return at >= 0 ? fc->a->batch.items[at].e.uid : 0;
}

/* Whatever of batch[first, end) is still marked never came: recorded, not dropped. */
static void fail_undelivered(struct attempt *a, size_t first, size_t end)
{
	for (size_t i = first; i < end; i++) {
		if (a->batch.items[i].outcome == ITEM_MARKED)
			fail_item(a, &a->batch.items[i], "the source did not deliver the message");
	}
}

/* Fetch batch[first, end) from one folder. When the fetch stops for a reason
 * wider than one message (connection lost, throttled), *stopped_uid is the
 * message it stopped at, so the error can say where. */
static gw_status fetch_group(struct attempt *a, size_t first, size_t end, uint32_t *stopped_uid)
{
	struct run_folder *rf = item_folder(a, &a->batch.items[first]);
	size_t index = (size_t)(rf - a->folders);
	if (a->current != (long)index) {
		struct gw_folder_status status;
		gw_status st = select_at_source(a, index, &status);
		if (st != GW_OK)
			return st;
		if (status.uidvalidity != rf->uidvalidity)
			return stop(a, GW_ERR_SESSION,
			            "folder \"%s\": UIDVALIDITY changed during the run (%u -> %u); "
			            "scanning again",
			            rf->mapped->source_name, rf->uidvalidity, status.uidvalidity);
	}
	a->sctx.folder = rf->mapped->source_name;
	uint32_t *uids = a->uids;
	for (size_t i = first; i < end; i++)
		uids[i - first] = a->batch.items[i].e.uid;
	uint64_t max_size = a->cfg->max_size > 0 ? a->cfg->max_size : UINT64_MAX;
	struct gw_fetch_request request = {.struct_size = sizeof(request),
	                                   .uids = uids,
	                                   .count = end - first,
	                                   .max_size = max_size};
	struct fetch_ctx fc = {
	        .a = a, .first = first, .end = end, .expected = first, .current = -1};
	struct gw_fetch_target target = copy_target(&fc);
	ctx_reset(&a->sctx);
	gw_status st = a->src_ops->fetch(a->src, &request, &target);
	if (st != GW_OK && st != GW_ERR_MESSAGE)
		*stopped_uid = stopped_at(&fc);
	if (fc.stop != GW_OK)
		return fc.stop;
	if (st == GW_ERR_MESSAGE)
		st = GW_OK;
	if (st == GW_OK)
		fail_undelivered(a, first, end);
	return st;
}

/* A fetch that stopped for more than one message stops the attempt, saying where. */
static gw_status stop_fetch(struct attempt *a, struct run_folder *rf, uint32_t stopped_uid,
                            gw_status st)
{
	if (st == GW_ERR_CANCELLED)
		return stop(a, st, "interrupted");
	char fallback[160];
	return stop(a, st, "folder \"%s\", UID %" PRIu32 ": %s: %s", rf->mapped->source_name,
	            stopped_uid, a->rt->source_label,
	            ctx_error(&a->sctx, "fetch", st, fallback, sizeof(fallback)));
}

/* The batch's groups one by one: select, fetch, each waiting for the server. */
static gw_status fetch_groups_one_by_one(struct attempt *a, size_t *groups)
{
	gw_status st = GW_OK;
	for (size_t first = 0; first < a->batch.count && st == GW_OK;) {
		size_t end = group_end(a, first);
		struct run_folder *rf = item_folder(a, &a->batch.items[first]);
		if (gw_cancel_level() >= 1)
			return stop(a, GW_ERR_CANCELLED, "interrupted");
		if (!rf->failed) {
			++*groups;
			uint32_t stopped_uid = 0;
			st = fetch_group(a, first, end, &stopped_uid);
			if (st == GW_ERR_FOLDER) {
				char fallback[160];
				struct fetch_ctx fc = {.a = a, .first = first, .end = end};
				give_up_group(&fc, ctx_error(&a->sctx, "fetch", st, fallback,
				                             sizeof(fallback)));
				st = fc.stop;
			} else if (st != GW_OK) {
				st = stop_fetch(a, rf, stopped_uid, st);
			}
		}
		first = end;
	}
	return st;
}

/* The batch's groups in one call (gw_source_ops::fetch_folders): the source
 * sends each folder's selection in its pipeline, so over a network a folder
 * switch costs no round trip (bench/PROFILE.md, tenth pass). */
static gw_status fetch_groups_in_one(struct attempt *a, size_t *groups)
{
	size_t *firsts = gw_xcalloc(a->batch.count, sizeof(*firsts));
	struct gw_fetch_request *requests = gw_xcalloc(a->batch.count, sizeof(*requests));
	uint64_t max_size = a->cfg->max_size > 0 ? a->cfg->max_size : UINT64_MAX;
	size_t count = 0;
	for (size_t first = 0; first < a->batch.count;) {
		size_t end = group_end(a, first);
		struct run_folder *rf = item_folder(a, &a->batch.items[first]);
		for (size_t i = first; i < end; i++)
			a->uids[i] = a->batch.items[i].e.uid;
		if (!rf->failed) {
			requests[count] =
			        (struct gw_fetch_request){.struct_size = sizeof(*requests),
			                                  .uids = &a->uids[first],
			                                  .count = end - first,
			                                  .max_size = max_size,
			                                  .folder = rf->mapped->source_name,
			                                  .uidvalidity = rf->uidvalidity};
			firsts[count++] = first;
		}
		first = end;
	}
	*groups = count;
	/* Until the first request() nothing matches: the group is empty. */
	struct fetch_ctx fc = {.a = a, .group_firsts = firsts, .group_count = count, .current = -1};
	struct gw_fetch_target target = copy_target(&fc);
	ctx_reset(&a->sctx);
	gw_status st =
	        count > 0 ? a->src_ops->fetch_folders(a->src, requests, count, &target) : GW_OK;
	a->current = -1; /* whichever folder the source has open now */
	if (st == GW_ERR_MESSAGE)
		st = GW_OK;
	if (fc.stop != GW_OK) {
		st = fc.stop;
	} else if (st == GW_OK) {
		for (size_t g = 0; g < count; g++)
			fail_undelivered(a, firsts[g], group_end(a, firsts[g]));
	} else {
		size_t where = fc.end > fc.first ? fc.first : firsts[0];
		st = stop_fetch(a, item_folder(a, &a->batch.items[where]), stopped_at(&fc), st);
	}
	free(requests);
	free(firsts);
	return st;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

static int cmp_item_group(const void *x, const void *y)
{
	const struct batch_item *a = x, *b = y;
	if (a->group != b->group)
		return a->group < b->group ? -1 : 1;
	return a->e.uid < b->e.uid ? -1 : a->e.uid > b->e.uid;
}

/* Reorder the batch so each folder's messages are contiguous and in UID
 * order (the order a server answers a UID set in), the folder selected at the
 * source first (saves a SELECT), then the folders in order of first appearance.
 * A batch lies within a date slice or two (selection.h): order within it is
 * not part of newest-first. */
static void group_batch(struct attempt *a)
{
	size_t n = a->batch.count;
	/* (folder, position) keys sorted: each folder's run starts at its first appearance. */
	uint64_t *keys = a->group_keys;
	for (size_t i = 0; i < n; i++)
		keys[i] = (uint64_t)a->batch.items[i].e.folder << 32 | i;
	qsort(keys, n, sizeof(*keys), cmp_u64);
	for (size_t first = 0; first < n;) {
		uint32_t folder = (uint32_t)(keys[first] >> 32);
		uint32_t group = (long)folder == a->current ? 0 : (uint32_t)keys[first] + 1;
		size_t end = first;
		for (; end < n && (uint32_t)(keys[end] >> 32) == folder; end++)
			a->batch.items[(uint32_t)keys[end]].group = group;
		first = end;
	}
	qsort(a->batch.items, n, sizeof(*a->batch.items), cmp_item_group);
}

/* The sink's answer to flush, flush_begin or flush_wait (@p operation). */
static gw_status flushed_sink(struct attempt *a, const char *operation, gw_status st)
{
	if (st == GW_OK)
		return GW_OK;
	/* Nothing of the batch is known durable: it stays pending for lookup. */
	if (st == GW_ERR_MESSAGE || st == GW_ERR_FOLDER)
		st = GW_ERR_SESSION;
	return stop_plugin(a, &a->kctx, a->rt->sink_label, operation, st);
}

static gw_status flush_sink(struct attempt *a)
{
	ctx_reset(&a->kctx);
	return flushed_sink(a, "flush", a->snk_ops->flush(a->snk));
}

static void count_migrated(struct attempt *a, struct run_folder *rf, uint64_t size)
{
	rf->rep->migrated++;
	rf->rep->bytes += size;
	atomic_fetch_add(&a->res->progress->done, 1);
	atomic_fetch_add(&a->res->progress->bytes, size);
	settle_one(a);
}

/* Items the sink refused after append() had returned (a pipelined APPEND's
 * late NO) are failures of their own: recorded, and their pending rows
 * dropped with the others that never reached the sink. */
static void apply_outcomes(struct attempt *a)
{
	for (size_t i = 0; i < a->batch.count; i++) {
		struct batch_item *item = &a->batch.items[i];
		struct gw_sink_outcome *outcome = &a->batch.outcomes[i];
		if (item->outcome != ITEM_APPENDED || outcome->status == GW_OK)
			continue;
		outcome->reason[sizeof(outcome->reason) - 1] = '\0';
		char *reason = gw_xasprintf("%s: %s", a->rt->sink_label,
		                            outcome->reason[0] ? outcome->reason
		                                               : gw_status_name(outcome->status));
		fail_item(a, item, reason);
		free(reason);
	}
}

/* Copy @p s into the deferred commit's text at *@p at. */
static const char *defer_text(char **at, const char *s)
{
	if (s == NULL)
		return NULL;
	size_t n = strlen(s) + 1;
	char *copy = memcpy(*at, s, n);
	*at += n;
	return copy;
}

static size_t text_size(const char *s)
{
	return s != NULL ? strlen(s) + 1 : 0;
}

/* Copy a->batch's state writes out of it (into a->deferred, which must be
 * empty: its text buffer is filled from the start):
 * if @p durable (its flush returned GW_OK), the done marks of its appended
 * messages; in any case the pending rows to drop of those that never reached
 * the sink, so the next attempt copies them without asking the sink. Without
 * a durable flush the appended stay pending, for lookup. */
static void defer_batch(struct attempt *a, bool durable)
{
	struct deferred_commit *d = &a->deferred;
	apply_outcomes(a);
	size_t need = 0;
	for (size_t i = 0; i < a->batch.count; i++) {
		const struct batch_item *item = &a->batch.items[i];
		if (durable && item->outcome == ITEM_APPENDED)
			need += text_size(item->origin_key) + text_size(item->sink_id) +
			        text_size(item->sha256) + text_size(item->message_id);
	}
	if (need > d->text_cap) {
		d->text_cap = need;
		d->text = gw_xrealloc(d->text, need);
	}
	char *at = d->text;
	for (size_t i = 0; i < a->batch.count; i++) {
		const struct batch_item *item = &a->batch.items[i];
		const struct run_folder *rf = item_folder(a, item);
		if (durable && item->outcome == ITEM_APPENDED) {
			d->done_folders[d->done_count] = item->e.folder;
			d->done[d->done_count++] = (struct gw_state_record){
			        .uidvalidity = rf->uidvalidity,
			        .uid = item->e.uid,
			        .origin_key = defer_text(&at, item->origin_key),
			        .sink_folder = rf->sink_id,
			        .sink_id = defer_text(&at, item->sink_id),
			        .size = item->size,
			        .sha256_hex = defer_text(&at, item->sha256),
			        .message_id = defer_text(&at, item->message_id),
			        .internal_date = item->e.internal_date,
			};
		} else if (item->outcome == ITEM_FAILED || item->outcome == ITEM_MARKED) {
			d->drop_folders[d->drop_count] = item->e.folder;
			d->drop_uids[d->drop_count++] = item->e.uid;
		}
	}
}

/* The end of the run of entries from @p first that share its folder. */
static size_t folder_run_end(const uint32_t *folders, size_t first, size_t count)
{
	size_t end = first + 1;
	while (end < count && folders[end] == folders[first])
		end++;
	return end;
}

/* The deferred rows, into the open group of writes: per folder, as they
 * came (a batch is grouped by folder). */
static gw_status write_deferred_rows(struct attempt *a)
{
	struct deferred_commit *d = &a->deferred;
	char *error = NULL;
	for (size_t first = 0, end; first < d->done_count; first = end) {
		end = folder_run_end(d->done_folders, first, d->done_count);
		struct run_folder *rf = &a->folders[d->done_folders[first]];
		if (!gw_state_mark_done(a->res->state, &rf->key, &d->done[first], end - first,
		                        &error))
			return stop_state(a, error);
	}
	for (size_t first = 0, end; first < d->drop_count; first = end) {
		end = folder_run_end(d->drop_folders, first, d->drop_count);
		struct run_folder *rf = &a->folders[d->drop_folders[first]];
		if (!gw_state_drop_pending(a->res->state, &rf->key, &d->drop_uids[first],
		                           rf->uidvalidity, end - first, &error))
			return stop_state(a, error);
	}
	return GW_OK;
}

/* The transaction holding the deferred rows ended (@p committed or not):
 * committed, their messages count as migrated; if not, they are dropped, as
 * a crash would lose them: what they marked done stays pending and the next
 * run's lookup finds it in the sink. */
static void deferred_ended(struct attempt *a, bool committed)
{
	struct deferred_commit *d = &a->deferred;
	for (size_t i = 0; committed && i < d->done_count; i++)
		count_migrated(a, &a->folders[d->done_folders[i]], d->done[i].size);
	d->done_count = d->drop_count = 0;
}

/* Begin a transaction for a batch's state writes; every one carries the
 * deferred rows, written first (*@p st: how that went). False if it could not
 * begin: the deferred rows are dropped, *@p st says why. */
static bool begin_batch_writes(struct attempt *a, bool full_sync, gw_status *st)
{
	char *error = NULL;
	if (gw_state_group_begin(a->res->state, full_sync, &error)) {
		*st = write_deferred_rows(a);
		return true;
	}
	deferred_ended(a, false);
	*st = stop_state(a, error);
	return false;
}

/* End what begin_batch_writes began, whatever @p st (the first failure of its
 * writes) says: a failed write rolled the transaction back, and the commit
 * ends it, so the state handle takes the next transaction (the worker keeps
 * it for its next mailbox). */
static gw_status end_batch_writes(struct attempt *a, gw_status st)
{
	char *error = NULL;
	if (!gw_state_group_commit(a->res->state, &error)) {
		gw_status cs = stop_state(a, error);
		st = st != GW_OK ? st : cs;
	}
	deferred_ended(a, st == GW_OK);
	return st;
}

/* Commit the deferred rows in a transaction of their own: the next batch
 * brought no message to write them with, the copy ends, or the sink's flush
 * is not in the background. */
static gw_status write_deferred(struct attempt *a)
{
	struct deferred_commit *d = &a->deferred;
	if (d->done_count + d->drop_count == 0)
		return GW_OK;
	gw_status st;
	return begin_batch_writes(a, false, &st) ? end_batch_writes(a, st) : st;
}

/* The state writes of a whole batch in one transaction, at once: the done
 * marks of every folder group and the pending rows dropped. Messages count
 * as migrated only once it committed. @p flushed: what the sink's flush of
 * the batch returned (GW_OK if nothing was appended). A batch settled before
 * it whose writes still wait (finish_batch) is written first: the state
 * commits in order. */
static gw_status commit_batch(struct attempt *a, gw_status flushed)
{
	gw_status before = write_deferred(a);
	defer_batch(a, flushed == GW_OK && before == GW_OK);
	gw_status st = write_deferred(a);
	return flushed != GW_OK ? flushed : before != GW_OK ? before : st;
}

static void batch_reset(struct batch *b)
{
	for (size_t i = 0; i < b->count; i++)
		free(b->items[i].message_id);
	if (b->items != NULL) /* only what the batch used: the rest stays untouched memory */
		memset(b->items, 0, b->count * sizeof(*b->items));
	b->count = 0;
	b->kw_len = 0;
}

static void swap_batches(struct attempt *a)
{
	struct batch t = a->batch;
	a->batch = a->held;
	a->held = t;
}

/* Wait for the held batch's flush. Its state writes are deferred to the next
 * batch's first message (write_batch_pending): then the source streams while
 * the state writes, where at the boundary the connection idled for them
 * (bench/PROFILE.md, twelfth pass). A failed flush is committed at once (its
 * pending rows dropped, nothing done). The batch's own functions work on
 * a->batch, so the two trade places meanwhile. */
static gw_status settle_held(struct attempt *a)
{
	if (a->held.count == 0)
		return GW_OK;
	ctx_reset(&a->kctx);
	gw_status flushed = flushed_sink(a, "flush", a->snk_ops->flush_wait(a->snk));
	swap_batches(a);
	gw_status st = GW_OK;
	if (flushed == GW_OK)
		defer_batch(a, true);
	else
		st = commit_batch(a, flushed);
	batch_reset(&a->batch);
	swap_batches(a);
	return st;
}

/* After its fetch: commit the batch, or, with a sink that flushes in the
 * background, begin its flush and hold it until the next batch's fetch is
 * over, so the source streams while the sink's disk works. The batch before
 * is settled first (its state writes deferred): the state commits in order,
 * and a sink flushes one batch at a time. The last batch is held too, and
 * settled when the copy ends (migrate_selected), as on any error. */
static gw_status finish_batch(struct attempt *a, bool any_appended)
{
	gw_status st = write_deferred(a); /* if this batch brought no message */
	if (st == GW_OK)
		st = settle_held(a);
	if (st != GW_OK) /* the sink or the state failed: this batch is not flushed */
		return commit_batch(a, st);
	if (!any_appended)
		return commit_batch(a, GW_OK);
	if (!GW_SINK_HAS(a->snk_ops, flush_begin))
		return commit_batch(a, flush_sink(a));
	ctx_reset(&a->kctx);
	st = a->snk_ops->flush_begin(a->snk);
	if (st != GW_OK)
		return commit_batch(a, flushed_sink(a, "flush_begin", st));
	swap_batches(a); /* held now; its buffers are free (settled above) for the next */
	return GW_OK;
}

/* The batch's messages get their origin keys and are marked in memory: what
 * the fetch matches bodies against. Their pending rows are written later
 * (write_batch_pending), once the source has the batch's commands. */
static void mark_batch(struct attempt *a)
{
	for (size_t first = 0; first < a->batch.count;) {
		size_t end = group_end(a, first);
		struct run_folder *rf = item_folder(a, &a->batch.items[first]);
		for (size_t i = first; i < end && !rf->failed; i++) {
			struct batch_item *item = &a->batch.items[i];
			gw_origin_key(a->rt->name, a->job->mailbox->email, rf->mapped->source_name,
			              rf->uidvalidity, item->e.uid, item->origin_key);
			item->outcome = ITEM_MARKED;
		}
		first = end;
	}
	a->pending_written = false;
	a->pending_us = 0;
}

/* Every message of the batch still to come is marked pending in the state
 * before the first reaches the sink, in one transaction (one WAL fsync per
 * batch) that also holds the deferred writes of the batch flushed before.
 * Called at the first message the source begins to deliver, so the server
 * already streams the batch while the state writes: at the boundary the
 * connection idled for it (bench/PROFILE.md, eleventh and twelfth passes).
 * On failure nothing is pending and nothing of the batch is marked, and the
 * deferred writes are dropped (deferred_ended). */
static gw_status write_batch_pending(struct attempt *a)
{
	int64_t began = gw_monotonic_us();
	a->pending_written = true;
	gw_status st;
	if (begin_batch_writes(a, true, &st)) {
		for (size_t first = 0; first < a->batch.count && st == GW_OK;) {
			size_t end = group_end(a, first);
			st = write_group_pending(a, item_folder(a, &a->batch.items[first]), first,
			                         end);
			first = end;
		}
		st = end_batch_writes(a, st);
	}
	if (st != GW_OK) {
		for (size_t i = 0; i < a->batch.count; i++) {
			if (a->batch.items[i].outcome == ITEM_MARKED)
				a->batch.items[i].outcome = ITEM_NONE; /* rolled back */
		}
	}
	a->pending_us = gw_monotonic_us() - began;
	return st;
}

static gw_status run_batch(struct attempt *a)
{
	int64_t t1 = gw_monotonic_us();
	group_batch(a);
	mark_batch(a);
	gw_status st = GW_OK;
	size_t groups = 0;
	if (gw_cancel_level() >= 1)
		st = stop(a, GW_ERR_CANCELLED, "interrupted");
	else if (GW_SOURCE_HAS(a->src_ops, fetch_folders))
		st = fetch_groups_in_one(a, &groups);
	else
		st = fetch_groups_one_by_one(a, &groups);
	if (gw_cancel_level() >= 2)
		return stop(a, GW_ERR_CANCELLED,
		            "stopped at once; the batch in flight is resolved "
		            "on the next run");
	if (st == GW_ERR_CANCELLED)
		stop(a, GW_ERR_CANCELLED, "interrupted");
	bool any_appended = false;
	uint64_t bytes = 0;
	for (size_t i = 0; i < a->batch.count; i++) {
		any_appended |= a->batch.items[i].outcome == ITEM_APPENDED;
		bytes += a->batch.items[i].size;
	}
	int64_t t2 = gw_monotonic_us();
	size_t count = a->batch.count; /* finish_batch may hold the batch */
	gw_status commit = finish_batch(a, any_appended);
	/* Where a batch's time goes, for tuning against a given server and disk. */
	a->sctx.folder = NULL; /* the batch spans folders */
	gw_log(&a->sctx, GW_LOG_DEBUG,
	       "connection %u: batch of %zu message(s), %.1f MB, %zu folder(s): fetch %.1f ms "
	       "(state writes %.1f ms of it), boundary %.1f ms",
	       a->lane + 1, count, (double)bytes / 1e6, groups, (double)(t2 - t1) / 1e3,
	       (double)a->pending_us / 1e3, (double)(gw_monotonic_us() - t2) / 1e3);
	return st != GW_OK ? st : commit;
}

/* Take the entry into the batch, its keywords copied out of the selection's row. */
static void take_into_batch(struct attempt *a, const struct gw_sel_entry *e)
{
	if (a->batch.kw_len + e->keyword_count > a->batch.kw_cap) {
		a->batch.kw_cap = (a->batch.kw_len + e->keyword_count) * 2;
		a->batch.kw = gw_xrealloc(a->batch.kw, a->batch.kw_cap * sizeof(*a->batch.kw));
	}
	struct batch_item *item = &a->batch.items[a->batch.count++];
	item->e = *e;
	item->e.keywords = NULL;
	item->kw_offset = (uint32_t)a->batch.kw_len;
	if (e->keyword_count > 0)
		memcpy(&a->batch.kw[a->batch.kw_len], e->keywords,
		       e->keyword_count * sizeof(*a->batch.kw));
	a->batch.kw_len += e->keyword_count;
}

static gw_status copy_batches(struct attempt *a)
{
	for (;;) {
		if (gw_cancel_level() >= 1)
			return stop(a, GW_ERR_CANCELLED, "interrupted");
		batch_reset(&a->batch);
		uint64_t bytes = 0;
		struct gw_sel_entry e;
		char *error = NULL;
		while (a->batch.count < a->batch_max) {
			if (!gw_sel_cursor_peek(a->cursor, &e, &error)) {
				if (error != NULL)
					return stop_selection(a, error);
				break;
			}
			/* A failed folder's messages were recorded when it failed. */
			if (a->folders[e.folder].failed) {
				gw_sel_cursor_advance(a->cursor);
				continue;
			}
			if (a->batch.count > 0 && bytes + e.size > a->cfg->batch_bytes)
				break;
			take_into_batch(a, &e);
			gw_sel_cursor_advance(a->cursor);
			bytes += e.size;
		}
		if (a->batch.count == 0)
			return GW_OK;
		gw_status st = run_batch(a);
		batch_reset(&a->batch);
		if (st != GW_OK)
			return st;
	}
}

static gw_status migrate_selected(struct attempt *a)
{
	gw_status st = copy_batches(a);
	gw_status held = write_deferred(a);
	if (held == GW_OK)
		held = settle_held(a);
	if (held == GW_OK)
		held = write_deferred(a);
	return st != GW_OK ? st : held;
}

/* ---- sessions and buffers ---- */

static void set_contexts(struct attempt *a)
{
	a->sctx = (struct gw_ctx){.pipeline = a->rt->name,
	                          .mailbox = a->job->mailbox->email,
	                          .plugin = a->rt->source_label};
	a->kctx = (struct gw_ctx){.pipeline = a->rt->name,
	                          .mailbox = a->job->mailbox->email,
	                          .plugin = a->rt->sink_label};
}

static void batch_init(struct batch *b, size_t max)
{
	*b = (struct batch){.items = gw_xcalloc(max, sizeof(*b->items)),
	                    .outcomes = gw_xcalloc(max, sizeof(*b->outcomes))};
}

static void batch_fini(struct batch *b)
{
	batch_reset(b);
	free(b->items);
	free(b->outcomes);
	free(b->kw);
}

/* How many messages a batch may hold when @p lanes copy the mailbox.
 * batch_messages bounds the messages a mailbox has in flight, so that its
 * batch buffers take as much memory whatever runs at once: the lanes share it
 * out, and so do the two batches of a lane whose sink flushes in the
 * background (one flushing, one fetched; the buffers stay larger, untouched
 * beyond the bound). batch_bytes stays per batch: each flush is a syncfs, and
 * halving it doubled them (bench/PROFILE.md, sixth pass). */
static size_t batch_bound(const struct attempt *a, unsigned lanes)
{
	size_t in_flight = GW_SINK_HAS(a->snk_ops, flush_begin) ? 2 : 1;
	size_t bound = a->cfg->batch_messages / (lanes * in_flight);
	return bound > 0 ? bound : 1;
}

/* The copy follows newest first in slices of this many batches, each slice
 * folder by folder: a source switches folders once a slice, not once a batch
 * (a Dovecot SELECT reads the folder's index and UID list anew; ten batches of
 * 30 folders cost it 0.4 core-s more than three: bench/PROFILE.md, nineteenth
 * pass). Memory and the unit of commit stay the batch's. */
#define BATCHES_PER_SLICE 4

static bool open_cursor(const struct attempt *a, unsigned lane, struct gw_sel_cursor **cursor,
                        char **error)
{
	return gw_sel_cursor_open(a->selection, lane, (uint64_t)a->batch_max * BATCHES_PER_SLICE,
	                          a->cfg->batch_bytes > UINT64_MAX / BATCHES_PER_SLICE
	                                  ? UINT64_MAX
	                                  : a->cfg->batch_bytes * BATCHES_PER_SLICE,
	                          cursor, error);
}

/* Buffers for batches of up to @p max messages. The held batch's stay
 * untouched (calloc: not resident) with a sink that has no flush_begin. */
static void batch_alloc(struct attempt *a, size_t max)
{
	a->batch_max = max;
	batch_init(&a->batch, max);
	batch_init(&a->held, max);
	a->records = gw_xcalloc(max, sizeof(*a->records));
	a->deferred = (struct deferred_commit){
	        .done = gw_xcalloc(max, sizeof(*a->deferred.done)),
	        .done_folders = gw_xcalloc(max, sizeof(*a->deferred.done_folders)),
	        .drop_uids = gw_xcalloc(max, sizeof(*a->deferred.drop_uids)),
	        .drop_folders = gw_xcalloc(max, sizeof(*a->deferred.drop_folders))};
	a->uids = gw_xcalloc(max, sizeof(*a->uids));
	a->group_keys = gw_xcalloc(max, sizeof(*a->group_keys));
}

static void batch_free(struct attempt *a)
{
	batch_fini(&a->batch);
	batch_fini(&a->held);
	free(a->records);
	free(a->deferred.done);
	free(a->deferred.done_folders);
	free(a->deferred.drop_uids);
	free(a->deferred.drop_folders);
	free(a->deferred.text);
	free(a->uids);
	free(a->group_keys);
}

static gw_status open_sessions(struct attempt *a)
{
	const struct gw_pipeline_rt *rt = a->rt;
	ctx_reset(&a->sctx);
	gw_status st = a->src_ops->open(rt->source_state, &a->sctx, a->job->mailbox, &a->src);
	if (st != GW_OK) {
		a->src = NULL;
		return stop_plugin(a, &a->sctx, rt->source_label, "open", st);
	}
	ctx_reset(&a->kctx);
	st = a->snk_ops->open(rt->sink_state, &a->kctx, a->job->mailbox, &a->snk);
	if (st != GW_OK) {
		a->snk = NULL;
		return stop_plugin(a, &a->kctx, rt->sink_label, "open", st);
	}
	return GW_OK;
}

static void close_sessions(struct attempt *a)
{
	if (a->snk != NULL)
		a->snk_ops->close(a->snk);
	if (a->src != NULL)
		a->src_ops->close(a->src);
	a->snk = a->src = NULL;
}

/* ---- lanes ---- */

/* After the scan, the copy runs in lanes: each folder belongs to one lane, and
 * each lane walks its own newest-first cursor on a source and a sink session
 * of its own (PROFILE.md: one connection leaves the server idle while godwit
 * works, and the reverse). Lane 0 is the attempt itself, on the scheduler's
 * sessions and thread. Every other lane is a copy of it on a thread of its
 * own, with its own state handle, spool, batch and error; it shares what the
 * scan produced (mapped folders, keywords, selection, reports), which does not
 * change while lanes run, except each folder's report, written by its own
 * lane only. A sink folder that several source folders land in belongs to one
 * lane, so no sink folder is ever written by two sessions at once. */
struct lane {
	struct attempt a;
	struct gw_worker_res res;
	pthread_t thread;
	bool running; /* its thread was started */
	bool opened;  /* its sessions were opened, so it walked its cursor */
	gw_status status;
};

struct by_sink_id {
	const char *sink_id;
	uint32_t folder;
};

static int cmp_sink_id(const void *x, const void *y)
{
	const struct by_sink_id *a = x, *b = y;
	int c = strcmp(a->sink_id, b->sink_id);
	return c != 0 ? c : (a->folder > b->folder) - (a->folder < b->folder);
}

/* Split the folders into at most @p wanted lanes; *lanes: how many got work. */
static gw_status plan_lanes(struct attempt *a, unsigned wanted, unsigned *lanes)
{
	size_t n = a->folder_count;
	struct by_sink_id *order = gw_xcalloc(n + 1, sizeof(*order));
	uint32_t *group_of = gw_xcalloc(n + 1, sizeof(*group_of));
	uint32_t *lane_of = gw_xcalloc(n + 1, sizeof(*lane_of));
	size_t ensured = 0;
	for (size_t i = 0; i < n; i++) {
		group_of[i] = (uint32_t)i;
		if (a->folders[i].ensured)
			order[ensured++] = (struct by_sink_id){a->folders[i].sink_id, (uint32_t)i};
	}
	/* Folders landing in one sink folder form one group, named by its first folder. */
	qsort(order, ensured, sizeof(*order), cmp_sink_id);
	for (size_t k = 1; k < ensured; k++) {
		if (strcmp(order[k - 1].sink_id, order[k].sink_id) == 0)
			group_of[order[k].folder] = group_of[order[k - 1].folder];
	}
	char *error = NULL;
	unsigned used = 0;
	bool ok =
	        gw_selection_plan_lanes(a->selection, group_of, n, wanted, &used, lane_of, &error);
	for (size_t i = 0; ok && i < n; i++)
		a->folders[i].lane = lane_of[i];
	*lanes = used > 0 ? used : 1;
	free(order);
	free(group_of);
	free(lane_of);
	return ok ? GW_OK : stop_selection(a, error);
}

static struct lane *lane_new(const struct attempt *first, uint32_t index)
{
	struct lane *lane = gw_xcalloc(1, sizeof(*lane));
	lane->res = (struct gw_worker_res){.spool = gw_spool_new(NULL, 0),
	                                   .progress = first->res->progress,
	                                   .state_path = first->res->state_path};
	struct attempt *l = &lane->a;
	*l = *first;
	l->res = &lane->res;
	l->lane = index;
	l->src = l->snk = NULL;
	l->current = -1;
	l->cursor = NULL;
	l->error = NULL;
	set_contexts(l);
	batch_alloc(l, first->batch_max);
	l->folders = gw_xcalloc(first->folder_count + 1, sizeof(*l->folders));
	for (size_t i = 0; i < first->folder_count; i++) {
		struct run_folder *rf = &l->folders[i];
		*rf = first->folders[i];
		rf->failed_uids = rf->done_uids = NULL; /* the scan's: not needed by the copy */
		rf->failed_count = rf->done_count = 0;
		rf->sink_folder = NULL; /* the first lane's session's: each lane opens its own */
	}
	return lane;
}

static void lane_free(struct lane *lane)
{
	struct attempt *l = &lane->a;
	batch_free(l);
	free(l->folders);
	gw_sel_cursor_close(l->cursor);
	free(l->error);
	gw_spool_free(lane->res.spool);
	if (lane->res.state != NULL)
		gw_state_close(lane->res.state);
	free(lane);
}

static gw_status ignore_folder(void *arg, const struct gw_folder_info *info)
{
	(void)arg;
	(void)info;
	return GW_OK;
}

/* The lane's sessions, listed at the source as the first one was (a source
 * may learn its namespace there), and its folders opened in its sink session
 * (they exist: the first lane made them). */
static gw_status open_lane(struct attempt *l)
{
	gw_status st = open_sessions(l);
	if (st == GW_OK) {
		ctx_reset(&l->sctx);
		st = l->src_ops->list_folders(l->src, ignore_folder, NULL);
		if (st != GW_OK)
			return stop_plugin(l, &l->sctx, l->rt->source_label, "listing folders", st);
	}
	if (st == GW_OK)
		st = prepare_sink_folders(l, true);
	for (size_t i = 0; st == GW_OK && i < l->folder_count; i++) {
		struct run_folder *rf = &l->folders[i];
		if (!opened_by_lane(l, rf))
			continue;
		char sink_id[GW_SINK_ID_MAX] = "";
		l->kctx.folder = rf->mapped->source_name;
		ctx_reset(&l->kctx);
		st = l->snk_ops->ensure_folder(l->snk, &rf->mapped->path, &rf->sink_folder,
		                               sink_id);
		l->kctx.folder = NULL;
		sink_id[GW_SINK_ID_MAX - 1] = '\0';
		if (st != GW_OK)
			return stop_plugin(l, &l->kctx, l->rt->sink_label, "opening a folder", st);
		if (strcmp(sink_id, rf->sink_id) != 0)
			return stop(l, GW_ERR_SESSION,
			            "%s: folder \"%s\" is %s on one session and %s on another",
			            l->rt->sink_label, rf->mapped->source_name, rf->sink_id,
			            sink_id);
	}
	return st;
}

static void *lane_main(void *arg)
{
	struct lane *lane = arg;
	struct attempt *l = &lane->a;
	char *error = NULL;
	if (!gw_state_open(lane->res.state_path, &lane->res.state, &error)) {
		lane->res.state = NULL;
		lane->status = stop_state(l, error);
	} else {
		lane->status = open_lane(l);
		lane->opened = lane->status == GW_OK;
		if (lane->opened)
			lane->status = migrate_selected(l);
	}
	close_sessions(l);
	gw_budget_release_pair(l->job->source_budget, l->job->sink_budget);
	return NULL;
}

/* Start the lane's thread. If it cannot run, its connections are given back
 * and lane->status says why. */
static void lane_start(struct attempt *a, struct lane *lane)
{
	char *error = NULL;
	struct attempt *l = &lane->a;
	if (!open_cursor(a, l->lane, &l->cursor, &error)) {
		lane->status = stop_selection(l, error);
	} else {
		int rc = pthread_create(&lane->thread, NULL, lane_main, lane);
		lane->running = rc == 0;
		if (rc != 0)
			lane->status =
			        stop(l, GW_ERR_SESSION, "cannot start a thread: %s", strerror(rc));
	}
	if (!lane->running)
		gw_budget_release_pair(a->job->source_budget, a->job->sink_budget);
}

/* A lane that could not open its sessions (the server refused one more
 * connection, say) copied nothing: the first lane copies its folders after
 * its own, on connections that work. */
static gw_status adopt_lane(struct attempt *a, struct lane *lane)
{
	gw_log(&a->sctx, GW_LOG_WARN,
	       "connection %u of the mailbox: %s; its folders are copied on the first connection",
	       lane->a.lane + 1, lane->a.error != NULL ? lane->a.error : "not started");
	struct gw_sel_cursor *own = a->cursor;
	a->cursor = lane->a.cursor;
	gw_status st = migrate_selected(a);
	a->cursor = own;
	return st;
}

static uint32_t max_u32(uint32_t x, uint32_t y)
{
	return x > y ? x : y;
}

/* Fold a finished lane into the attempt, which ended with @p st so far: the
 * first failure decides how it ends, and the longest pause a server asked for
 * holds. A lane that never opened is adopted here. */
static gw_status join_lane(struct attempt *a, struct lane *lane, gw_status st)
{
	if (lane->running)
		pthread_join(lane->thread, NULL);
	a->sctx.retry_after_ms =
	        max_u32(a->sctx.retry_after_ms,
	                max_u32(lane->a.sctx.retry_after_ms, lane->a.kctx.retry_after_ms));
	if (st != GW_OK)
		return st;
	if (!lane->opened && lane->a.cursor != NULL && gw_cancel_level() == 0)
		return adopt_lane(a, lane); /* how it ends is the first lane's now */
	if (lane->status != GW_OK) {
		free(a->error);
		a->error = lane->a.error;
		lane->a.error = NULL;
	}
	return lane->status;
}

/* How many lanes: what the profile allows if both plugins allow it, with a
 * source and a sink connection each from the budgets (taken only if free
 * now), and no more than there are sink folders with something to copy. */
static gw_status copy_in_lanes(struct attempt *a)
{
	struct gw_mailbox_job *job = a->job;
	const struct gw_pipeline *p = a->rt->pipeline;
	bool parallel = p->source->desc.capabilities & p->sink->desc.capabilities &
	                GW_CAP_PARALLEL_SESSIONS;
	unsigned extra = 0;
	if (parallel && a->res->state_path != NULL && job->source_budget != NULL &&
	    job->sink_budget != NULL) {
		while (extra + 1 < a->cfg->connections_per_mailbox &&
		       gw_budget_acquire_pair(job->source_budget, job->sink_budget, false))
			extra++;
	}
	unsigned lanes = 1;
	gw_status st = plan_lanes(a, 1 + extra, &lanes);
	if (st != GW_OK)
		lanes = 1;
	for (unsigned i = lanes; i < 1 + extra; i++)
		gw_budget_release_pair(job->source_budget, job->sink_budget);
	if (st != GW_OK)
		return st;
	a->batch_max = batch_bound(a, lanes);
	char *error = NULL;
	unsigned opened = 1;
	struct lane **others = gw_xcalloc(lanes, sizeof(*others));
	if (!open_cursor(a, 0, &a->cursor, &error)) {
		st = stop_selection(a, error);
	} else {
		for (unsigned i = 1; i < lanes; i++) {
			others[i - 1] = lane_new(a, i);
			lane_start(a, others[i - 1]);
		}
		st = migrate_selected(a);
	}
	for (unsigned i = 1; i < lanes; i++) {
		if (others[i - 1] == NULL) {
			gw_budget_release_pair(job->source_budget, job->sink_budget);
			continue;
		}
		st = join_lane(a, others[i - 1], st);
		opened += others[i - 1]->opened;
		lane_free(others[i - 1]);
	}
	free(others);
	if (opened > job->report.connections)
		job->report.connections = opened;
	return st;
}

/* ---- the attempt ---- */

static void attempt_free(struct attempt *a)
{
	batch_free(a);
	for (size_t i = 0; i < a->folder_count; i++) {
		free(a->folders[i].failed_uids);
		free(a->folders[i].done_uids);
	}
	free(a->folders);
	for (size_t i = 0; i < a->mapped_count; i++)
		gw_mapped_folder_free(&a->mapped[i]);
	free(a->mapped);
	gw_sel_cursor_close(a->cursor);
	gw_selection_close(a->selection);
	kw_free(&a->kw);
	free(a->error);
}

/* This attempt's share of the run's progress total. */
static void plan_progress(struct attempt *a, uint64_t todo)
{
	struct gw_progress *p = a->res->progress;
	atomic_fetch_sub(&p->planned, a->job->outstanding);
	atomic_fetch_add(&p->planned, todo);
	a->job->outstanding = todo;
}

static gw_status run_attempt(struct attempt *a)
{
	gw_status st = open_sessions(a);
	if (st == GW_OK)
		st = list_and_map(a);
	if (st == GW_OK)
		st = ensure_folders(a);
	if (st == GW_OK)
		st = scan_folders(a);
	if (st != GW_OK)
		return st;
	uint64_t todo = 0;
	if ((st = select_messages(a, &todo)) != GW_OK)
		return st;
	update_already_present(a);
	plan_progress(a, todo);
	gw_log(&a->sctx, GW_LOG_INFO, "%zu folder(s), %zu message(s) found, %llu to copy",
	       a->folder_count, a->found, (unsigned long long)todo);
	return copy_in_lanes(a);
}

gw_status gw_migrate_attempt(struct gw_mailbox_job *job, struct gw_worker_res *res,
                             uint32_t *retry_after_ms)
{
	struct attempt a = {
	        .job = job,
	        .res = res,
	        .rt = job->rt,
	        .cfg = job->rt->pipeline->cfg,
	        .src_ops = &job->rt->pipeline->source->source,
	        .snk_ops = &job->rt->pipeline->sink->sink,
	        .current = -1,
	};
	set_contexts(&a);
	batch_alloc(&a, a.cfg->batch_messages);
	a.batch_max = batch_bound(&a, 1);
	job->report.attempts++;
	gw_status st = run_attempt(&a);
	close_sessions(&a);
	*retry_after_ms = max_u32(a.sctx.retry_after_ms, a.kctx.retry_after_ms);
	gw_mailbox_report_set_error(&job->report, st == GW_OK ? NULL : a.error);
	attempt_free(&a);
	return st;
}
