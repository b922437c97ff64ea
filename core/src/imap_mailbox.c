/* What a sink needs besides APPEND: the personal namespace, CREATE,
 * SUBSCRIBE, the facts APPEND must respect in a folder (PERMANENTFLAGS,
 * UIDVALIDITY, APPENDLIMIT) and UID SEARCH. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap_internal.h"
#include "imap_utf7.h"
#include "log.h"
#include "util.h"

/* ---- personal namespace ---- */

static gw_status root_untagged(void *arg, struct gw_imap *imap, const struct imap_response *resp)
{
	(void)arg;
	if (!imap_value_is_atom(imap_list_item(&resp->data, 0), "LIST"))
		return GW_OK;
	const struct imap_value *delim = imap_list_item(&resp->data, 2);
	imap->personal_delimiter =
	        imap_value_is_string(delim) && delim->len == 1 ? delim->str[0] : 0;
	return GW_OK;
}

/* Without NAMESPACE: LIST "" "" names the hierarchy delimiter (RFC 3501 6.3.8). */
static gw_status read_root_delimiter(struct gw_imap *imap)
{
	struct imap_response tagged;
	gw_status st = imap_command(imap, "LIST \"\" \"\"", root_untagged, NULL, &tagged);
	if (st == GW_OK && tagged.cond != GW_IMAP_OK)
		st = imap_fail_response(imap, &tagged, GW_ERR_SESSION,
		                        "cannot read the hierarchy delimiter");
	imap_response_free(&tagged);
	if (st != GW_OK)
		return st;
	free(imap->personal_prefix);
	imap->personal_prefix = gw_xstrdup("");
	imap->personal_known = true;
	return GW_OK;
}

gw_status imap_get_namespace(struct gw_imap *imap, struct gw_imap_namespace *ns)
{
	gw_status st = imap_check_usable(imap);
	if (st != GW_OK)
		return st;
	if (!ns ||
	    ns->struct_size < offsetof(struct gw_imap_namespace, delimiter) + sizeof(ns->delimiter))
		return gw_fail(imap->ctx, GW_ERR_CONFIG, "namespace request from an unknown ABI");
	if (!imap->personal_known)
		st = imap_read_namespaces(imap);
	if (st == GW_OK && !imap->personal_known)
		st = read_root_delimiter(imap);
	if (st != GW_OK)
		return st;
	ns->prefix = imap->personal_prefix;
	ns->delimiter = imap->personal_delimiter;
	return GW_OK;
}

/* ---- CREATE, SUBSCRIBE ---- */

static char *wire_or_fail(struct gw_imap *imap, const char *folder, const char *what, gw_status *st)
{
	const char *why = NULL;
	char *wire = folder ? imap_wire_name(imap, folder, &why) : NULL;
	if (!wire)
		*st = gw_fail(imap->ctx, GW_ERR_FOLDER, "cannot %s folder \"%s\": %s", what,
		              folder ? folder : "(null)", why ? why : "no name");
	return wire;
}

/* "<verb> <quoted wire name>"; the tagged reply is left in @p tagged. */
static gw_status folder_command(struct gw_imap *imap, const char *verb, const char *folder,
                                struct imap_response *tagged)
{
	gw_status st = imap_check_usable(imap);
	memset(tagged, 0, sizeof(*tagged));
	if (st != GW_OK)
		return st;
	char *wire = wire_or_fail(imap, folder, verb, &st);
	if (!wire)
		return st;
	struct gw_buf cmd = {0};
	gw_buf_printf(&cmd, "%s ", verb);
	imap_append_quoted(&cmd, wire);
	free(wire);
	st = imap_command(imap, cmd.data, NULL, NULL, tagged);
	gw_buf_free(&cmd);
	return st;
}

static bool has_code(const struct imap_response *resp, const char *code)
{
	return imap_value_is_atom(imap_list_item(&resp->code, 0), code);
}

gw_status imap_create(struct gw_imap *imap, const char *folder, bool *created)
{
	if (created)
		*created = false;
	struct imap_response tagged;
	gw_status st = folder_command(imap, "CREATE", folder, &tagged);
	if (st == GW_OK && tagged.cond == GW_IMAP_OK && created)
		*created = true;
	if (st == GW_OK && tagged.cond != GW_IMAP_OK && !has_code(&tagged, "ALREADYEXISTS")) {
		char *what = gw_xasprintf("the server refused to create folder \"%s\"", folder);
		st = imap_fail_response(imap, &tagged, GW_ERR_FOLDER, what);
		free(what);
	}
	imap_response_free(&tagged);
	if (st == GW_OK && created && *created)
		gw_log(imap->ctx, GW_LOG_DEBUG, "created folder \"%s\"", folder);
	return st;
}

gw_status imap_subscribe(struct gw_imap *imap, const char *folder)
{
	struct imap_response tagged;
	gw_status st = folder_command(imap, "SUBSCRIBE", folder, &tagged);
	if (st == GW_OK && tagged.cond != GW_IMAP_OK) {
		char *what = gw_xasprintf("the server refused to subscribe folder \"%s\"", folder);
		st = imap_fail_response(imap, &tagged, GW_ERR_FOLDER, what);
		free(what);
	}
	imap_response_free(&tagged);
	return st;
}

/* ---- what APPEND must respect in a folder ---- */

static struct imap_append_target *target_of(struct gw_imap *imap, const char *folder)
{
	for (size_t i = 0; i < imap->target_count; i++)
		if (strcmp(imap->targets[i].utf8, folder) == 0)
			return &imap->targets[i];
	imap->targets =
	        gw_xrealloc(imap->targets, (imap->target_count + 1) * sizeof(*imap->targets));
	struct imap_append_target *t = &imap->targets[imap->target_count++];
	memset(t, 0, sizeof(*t));
	t->utf8 = gw_xstrdup(folder);
	return t;
}

static void target_clear_flags(struct imap_append_target *t)
{
	for (size_t i = 0; i < t->permanent_count; i++)
		free(t->permanent[i]);
	free(t->permanent);
	t->permanent = NULL;
	t->permanent_count = 0;
}

/* Take over the PERMANENTFLAGS the SELECT just collected. */
static void target_take_flags(struct gw_imap *imap, struct imap_append_target *t)
{
	target_clear_flags(t);
	t->flags_known = imap->permanent_seen;
	/* RFC 3501 7.1: without PERMANENTFLAGS every flag can be stored. */
	t->any_keyword = !imap->permanent_seen;
	t->permanent = imap->permanent_scratch;
	t->permanent_count = imap->permanent_scratch_count;
	imap->permanent_scratch = NULL;
	imap->permanent_scratch_count = 0;
	imap->permanent_seen = false; /* a SELECT after this one collects afresh */
	for (size_t i = 0; i < t->permanent_count; i++)
		if (strcmp(t->permanent[i], "\\*") == 0)
			t->any_keyword = true;
}

/* The n of a capability "APPENDLIMIT=n"; 0 if absent. */
static uint64_t global_append_limit(const struct gw_imap *imap)
{
	static const char name[] = "APPENDLIMIT=";
	for (size_t i = 0; i < imap->cap_count; i++) {
		if (strncasecmp(imap->caps[i], name, sizeof(name) - 1) != 0)
			continue;
		char *end;
		unsigned long long n = strtoull(imap->caps[i] + sizeof(name) - 1, &end, 10);
		if (*end == '\0')
			return n;
	}
	return 0;
}

/* A SELECT of @p folder succeeded: what append() must respect there (a
 * per-folder APPENDLIMIT, if any, is read afterwards). */
static struct imap_append_target *note_selected(struct gw_imap *imap, const char *folder,
                                                uint32_t uidvalidity)
{
	struct imap_append_target *t = target_of(imap, folder);
	target_take_flags(imap, t);
	t->uidvalidity = uidvalidity;
	t->append_limit = global_append_limit(imap);
	return t;
}

static void describe(struct gw_imap_mailbox_info *info, const struct imap_append_target *t,
                     const struct gw_folder_status *status)
{
	info->uidvalidity = status->uidvalidity;
	info->uidnext = status->uidnext;
	info->exists = status->exists;
	info->append_limit = t->append_limit;
	info->any_keyword = t->any_keyword;
	info->permanent_count = t->permanent_count;
	info->permanent_flags = (const char *const *)t->permanent;
}

static gw_status status_untagged(void *arg, struct gw_imap *imap, const struct imap_response *resp)
{
	uint64_t *limit = arg;
	(void)imap;
	if (!imap_value_is_atom(imap_list_item(&resp->data, 0), "STATUS"))
		return GW_OK;
	const struct imap_value *items = imap_list_item(&resp->data, 2);
	const struct imap_value *value = imap_list_get(items, "APPENDLIMIT");
	uint64_t n;
	if (value && imap_value_u64(value, &n))
		*limit = n;
	return GW_OK;
}

/* RFC 7889: a bare APPENDLIMIT capability means limits differ per folder. */
static gw_status folder_append_limit(struct gw_imap *imap, const char *folder, uint64_t *limit)
{
	gw_status st = GW_OK;
	char *wire = wire_or_fail(imap, folder, "query", &st);
	if (!wire)
		return st;
	struct gw_buf cmd = {0};
	gw_buf_puts(&cmd, "STATUS ");
	imap_append_quoted(&cmd, wire);
	gw_buf_puts(&cmd, " (APPENDLIMIT)");
	free(wire);
	struct imap_response tagged;
	st = imap_command(imap, cmd.data, status_untagged, limit, &tagged);
	gw_buf_free(&cmd);
	if (st == GW_OK && tagged.cond != GW_IMAP_OK)
		gw_log(imap->ctx, GW_LOG_DEBUG, "STATUS (APPENDLIMIT) of \"%s\" failed: %s", folder,
		       tagged.text);
	imap_response_free(&tagged);
	return st;
}

gw_status imap_mailbox_info(struct gw_imap *imap, const char *folder,
                            struct gw_imap_mailbox_info *info)
{
	gw_status st = imap_check_usable(imap);
	if (st != GW_OK)
		return st;
	if (info && info->struct_size < offsetof(struct gw_imap_mailbox_info, permanent_flags) +
	                                        sizeof(info->permanent_flags))
		return gw_fail(imap->ctx, GW_ERR_CONFIG, "mailbox info from an unknown ABI");
	struct gw_folder_status status = {.struct_size = sizeof(status)};
	st = imap_select(imap, folder, false, &status);
	if (st != GW_OK)
		return st;
	struct imap_append_target *t = note_selected(imap, folder, status.uidvalidity);
	if (imap_has_cap(imap, "APPENDLIMIT"))
		st = folder_append_limit(imap, folder, &t->append_limit);
	if (st == GW_OK && info)
		describe(info, t, &status);
	return st;
}

/* ---- several folders at once (prepare_folders) ----
 *
 * create, subscribe and mailbox_info one folder at a time wait for each
 * answer: three round trips per new folder, 0.9 s for 30 folders over 10 ms
 * (bench/PROFILE.md, sixteenth pass). Here each step's commands go out
 * together, up to pipeline_depth in flight, and the steps follow each other:
 * SUBSCRIBE only for what CREATE made, SELECT only for what exists. A server
 * runs one connection's SELECTs in order, so the untagged responses before a
 * SELECT's tagged reply are that SELECT's. */

enum prep_kind { PREP_CREATE, PREP_SUBSCRIBE, PREP_SELECT, PREP_STATUS };

struct prep_command {
	char tag[GW_IMAP_TAG_MAX]; /* first: see imap_take_answered */
	size_t request;
	enum prep_kind kind;
};

struct prep_pipe {
	struct gw_imap *imap;
	struct gw_imap_folder_prep *requests;
	size_t count;
	struct prep_command *queue; /* pipeline_depth + 1: a SELECT brings its STATUS */
	size_t queued;
	struct gw_folder_status selecting; /* the oldest SELECT's untagged responses */
	gw_status stop;                    /* the server throttles: nothing counts */
};

static void prep_refuse(struct gw_imap_folder_prep *r, const char *fmt, ...) GW_PRINTF(2, 3);

static void prep_refuse(struct gw_imap_folder_prep *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	r->status = GW_ERR_FOLDER;
}

static bool prep_wants(const struct gw_imap_folder_prep *r, enum prep_kind step)
{
	if (r->status != GW_OK)
		return false;
	if (step == PREP_CREATE)
		return r->create;
	if (step == PREP_SUBSCRIBE)
		return r->created && r->subscribe;
	return true;
}

/* "<verb> <folder>[ (APPENDLIMIT)]" (SELECT as imap_select sends it). */
static bool prep_command_text(struct gw_imap *imap, enum prep_kind kind, const char *folder,
                              struct gw_buf *cmd, const char **why)
{
	if (kind == PREP_SELECT)
		return imap_select_command(imap, folder, false, cmd, why);
	static const char *const verbs[] = {
	        [PREP_CREATE] = "CREATE", [PREP_SUBSCRIBE] = "SUBSCRIBE", [PREP_STATUS] = "STATUS"};
	char *wire = imap_wire_name(imap, folder, why);
	if (!wire)
		return false;
	gw_buf_printf(cmd, "%s ", verbs[kind]);
	imap_append_quoted(cmd, wire);
	free(wire);
	if (kind == PREP_STATUS)
		gw_buf_puts(cmd, " (APPENDLIMIT)");
	return true;
}

static void prep_fill(struct prep_pipe *p, enum prep_kind step, size_t *next, struct gw_buf *out)
{
	struct gw_imap *imap = p->imap;
	/* RFC 7889: a bare APPENDLIMIT capability means limits differ per folder. */
	bool status = step == PREP_SELECT && imap_has_cap(imap, "APPENDLIMIT");
	while (p->stop == GW_OK && p->queued < imap->pipeline_depth && *next < p->count) {
		size_t index = (*next)++;
		struct gw_imap_folder_prep *r = &p->requests[index];
		if (!prep_wants(r, step))
			continue;
		for (int k = 0; k < (status ? 2 : 1); k++) {
			enum prep_kind kind = k == 0 ? step : PREP_STATUS;
			struct gw_buf cmd = {0};
			const char *why = NULL;
			if (!prep_command_text(imap, kind, r->folder, &cmd, &why)) {
				prep_refuse(r, "cannot name folder \"%s\": %s", r->folder, why);
				break;
			}
			struct prep_command *c = &p->queue[p->queued++];
			*c = (struct prep_command){.request = index, .kind = kind};
			imap_next_tag(imap, c->tag);
			gw_buf_printf(out, "%s %s\r\n", c->tag, cmd.data);
			gw_buf_free(&cmd);
		}
	}
}

static void prep_selected(struct prep_pipe *p, struct gw_imap_folder_prep *r,
                          const struct imap_response *resp)
{
	struct gw_imap *imap = p->imap;
	struct gw_folder_status found = p->selecting;
	p->selecting = (struct gw_folder_status){.struct_size = sizeof(p->selecting)};
	if (resp->cond != GW_IMAP_OK) {
		imap_clear_permanent_flags(imap);
		imap->selected = false;
		imap->exists = 0;
		prep_refuse(r, "cannot select folder \"%s\": %s", r->folder, resp->text);
		return;
	}
	imap->selected = true;
	found.exists = imap->exists;
	describe(&r->info, note_selected(imap, r->folder, found.uidvalidity), &found);
}

static void prep_answered(struct prep_pipe *p, const struct prep_command *c,
                          const struct imap_response *resp)
{
	struct gw_imap *imap = p->imap;
	struct gw_imap_folder_prep *r = &p->requests[c->request];
	uint32_t retry_after;
	if (resp->cond != GW_IMAP_OK && imap_response_throttled(resp, &retry_after)) {
		if (p->stop == GW_OK)
			p->stop = imap_fail_response(imap, resp, GW_ERR_FOLDER,
			                             "the server throttles preparing folders");
		return;
	}
	switch (c->kind) {
	case PREP_CREATE:
		if (resp->cond == GW_IMAP_OK) {
			r->created = true;
			gw_log(imap->ctx, GW_LOG_DEBUG, "created folder \"%s\"", r->folder);
		} else if (!has_code(resp, "ALREADYEXISTS")) {
			prep_refuse(r, "the server refused to create folder \"%s\": %s", r->folder,
			            resp->text);
		}
		break;
	case PREP_SUBSCRIBE:
		if (resp->cond != GW_IMAP_OK)
			prep_refuse(r, "the server refused to subscribe folder \"%s\": %s",
			            r->folder, resp->text);
		break;
	case PREP_SELECT: prep_selected(p, r, resp); break;
	case PREP_STATUS:
		if (resp->cond != GW_IMAP_OK)
			gw_log(imap->ctx, GW_LOG_DEBUG, "STATUS (APPENDLIMIT) of \"%s\" failed: %s",
			       r->folder, resp->text);
		else if (r->status == GW_OK)
			target_of(imap, r->folder)->append_limit = r->info.append_limit;
		break;
	}
}

static void prep_untagged(struct prep_pipe *p, const struct imap_response *resp)
{
	const struct prep_command *oldest = &p->queue[0];
	if (oldest->kind == PREP_SELECT)
		imap_select_untagged(&p->selecting, p->imap, resp);
	else if (oldest->kind == PREP_STATUS)
		status_untagged(&p->requests[oldest->request].info.append_limit, p->imap, resp);
}

static gw_status prep_step(struct prep_pipe *p, enum prep_kind step)
{
	struct gw_imap *imap = p->imap;
	size_t next = 0;
	for (;;) {
		struct gw_buf out = {0};
		prep_fill(p, step, &next, &out);
		gw_status st = imap_send_queued(imap, &out);
		if (st != GW_OK)
			return st;
		if (p->queued == 0)
			return GW_OK;
		struct imap_response resp;
		st = imap_read(imap, &resp);
		if (st != GW_OK) {
			imap_response_free(&resp);
			return st;
		}
		struct prep_command c;
		if (resp.kind == GW_IMAP_UNTAGGED)
			prep_untagged(p, &resp);
		else if (resp.kind == GW_IMAP_TAGGED &&
		         imap_take_answered(imap, p->queue, &p->queued, sizeof(c), &resp, &c))
			prep_answered(p, &c, &resp);
		imap_response_free(&resp);
	}
}

gw_status imap_prepare_folders(struct gw_imap *imap, struct gw_imap_folder_prep *requests,
                               size_t count)
{
	gw_status st = imap_check_usable(imap);
	for (size_t i = 0; st == GW_OK && i < count; i++) {
		struct gw_imap_folder_prep *r = &requests[i];
		if (r->struct_size < sizeof(*r) || !r->folder ||
		    r->info.struct_size < offsetof(struct gw_imap_mailbox_info, permanent_flags) +
		                                  sizeof(r->info.permanent_flags)) {
			st = gw_fail(imap->ctx, GW_ERR_CONFIG, "invalid folder request %zu", i);
			break; /* nothing written into a struct that may be smaller */
		}
		r->status = GW_OK;
		r->created = false;
		r->error[0] = '\0';
		r->info = (struct gw_imap_mailbox_info){.struct_size = r->info.struct_size};
	}
	if (st != GW_OK || count == 0)
		return st;
	struct prep_pipe p = {.imap = imap,
	                      .requests = requests,
	                      .count = count,
	                      .queue = gw_xcalloc(imap->pipeline_depth + 1, sizeof(*p.queue)),
	                      .selecting = {.struct_size = sizeof(p.selecting)}};
	imap->selected = false; /* as imap_select does before its SELECT */
	imap->exists = 0;
	imap_clear_permanent_flags(imap);
	static const enum prep_kind steps[] = {PREP_CREATE, PREP_SUBSCRIBE, PREP_SELECT};
	for (size_t i = 0; st == GW_OK && p.stop == GW_OK && i < 3; i++)
		st = prep_step(&p, steps[i]);
	free(p.queue);
	return st != GW_OK ? st : p.stop;
}

void imap_append_targets_free(struct gw_imap *imap)
{
	for (size_t i = 0; i < imap->target_count; i++) {
		target_clear_flags(&imap->targets[i]);
		free(imap->targets[i].utf8);
	}
	free(imap->targets);
	imap->targets = NULL;
	imap->target_count = 0;
}

/* ---- UID SEARCH ---- */

struct search_state {
	gw_imap_uid_cb cb;
	void *arg;
};

static gw_status search_untagged(void *arg, struct gw_imap *imap, const struct imap_response *resp)
{
	struct search_state *s = arg;
	(void)imap;
	if (!imap_value_is_atom(imap_list_item(&resp->data, 0), "SEARCH"))
		return GW_OK;
	for (size_t i = 1; i < resp->data.count; i++) {
		uint32_t uid;
		if (imap_value_u32(&resp->data.items[i], &uid))
			s->cb(s->arg, uid);
	}
	return GW_OK;
}

static bool has_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

gw_status imap_search(struct gw_imap *imap, const char *criteria, gw_imap_uid_cb cb, void *arg)
{
	gw_status st = imap_check_usable(imap);
	if (st != GW_OK)
		return st;
	if (!imap->selected)
		return gw_fail(imap->ctx, GW_ERR_FOLDER, "no folder is selected");
	if (!criteria || !*criteria || strpbrk(criteria, "\r\n") || !cb)
		return gw_fail(imap->ctx, GW_ERR_CONFIG, "invalid search criteria");
	char *cmd = gw_xasprintf("UID SEARCH %s%s", has_8bit(criteria) ? "CHARSET UTF-8 " : "",
	                         criteria);
	struct search_state s = {.cb = cb, .arg = arg};
	struct imap_response tagged;
	st = imap_command(imap, cmd, search_untagged, &s, &tagged);
	free(cmd);
	if (st == GW_OK && tagged.cond != GW_IMAP_OK)
		st = imap_fail_response(imap, &tagged, GW_ERR_FOLDER, "search failed");
	imap_response_free(&tagged);
	return st;
}
